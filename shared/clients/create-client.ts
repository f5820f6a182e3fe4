import type { Db } from '../db.ts';
import type { IdGenerator } from '../ids.ts';
import { apiKeyPrefix, generateApiKey, hashApiKey } from './api-keys.ts';
import { checkRate } from './set-client-rate.ts';

export interface CreatedClient {
  readonly id: string;
  readonly name: string;
  /** The key in clear: shown once, never stored. */
  readonly key: string;
  /** Its own rate limit in requests per second; null: RATE_LIMIT_PER_SECOND. */
  readonly ratePerSecond: number | null;
}

export async function createApiClient(
  db: Db,
  ids: IdGenerator,
  name: string,
  opts: { readonly ratePerSecond?: number | null } = {},
): Promise<CreatedClient> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 200) throw new RangeError('a client name is 1-200 characters');
  const rate = checkRate(opts.ratePerSecond ?? null);
  const key = generateApiKey();
  const id = ids.next(0);
  await db('api_clients').insert({ id, name: trimmed, key_hash: hashApiKey(key), key_prefix: apiKeyPrefix(key), rate_per_second: rate });
  return { id, name: trimmed, key, ratePerSecond: rate };
}

/** Gives an existing client a new key (the old one stops working at once, up to the auth cache TTL). */
export async function rotateApiKey(db: Db, clientId: string): Promise<string> {
  const key = generateApiKey();
  const updated = await db('api_clients')
    .where({ id: clientId })
    .update({ key_hash: hashApiKey(key), key_prefix: apiKeyPrefix(key), revoked_at: null });
  if (updated !== 1) throw new Error(`no api client ${clientId}`);
  return key;
}
