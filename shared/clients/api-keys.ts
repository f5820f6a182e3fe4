import { createHash, randomBytes } from 'node:crypto';

/**
 * API keys are 32 random bytes; a fast SHA-256 is the right hash for keys of that entropy
 * (a slow password hash would only cost every request CPU). Only the hash is stored.
 */
export function generateApiKey(): string {
  return `ck_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The part shown in listings and logs, enough to tell keys apart and useless to an attacker. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, 10);
}
