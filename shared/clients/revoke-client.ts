import type { Db } from '../db.ts';
import { findApiClient } from './find-client.ts';
import type { ApiClientRow } from './client-row.ts';

/**
 * Revokes a client's key (named by name or key prefix). Web processes stop accepting it within
 * AUTH_CACHE_TTL_SECONDS (their key cache). A key revoked before stays revoked at its first time.
 */
export async function revokeApiClient(db: Db, nameOrPrefix: string): Promise<{ readonly client: ApiClientRow; readonly alreadyRevoked: boolean }> {
  const client = await findApiClient(db, nameOrPrefix);
  const updated = await db('api_clients').where({ id: client.id }).whereNull('revoked_at').update({ revoked_at: db.raw('CURRENT_TIMESTAMP(3)') });
  const [row] = await db('api_clients').select('revoked_at').where({ id: client.id });
  return { client: { ...client, revokedAt: new Date(row.revoked_at) }, alreadyRevoked: updated === 0 };
}
