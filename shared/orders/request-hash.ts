import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';

/**
 * Fingerprint of a request body, independent of key order and whitespace, so a client that
 * re-serialises the same order on retry is recognised as the same request.
 */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(stringify(body) ?? '').digest('hex');
}
