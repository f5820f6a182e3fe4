import type { Db } from '../db.ts';
import { ClientLookupError } from '../errors/index.ts';
import { CLIENT_COLUMNS, toClientRow, type ApiClientRow } from './client-row.ts';

/**
 * The one API client an operator means by a name or a key prefix (`ck_` and the next 7 characters,
 * as `client:list` shows it). Names need not be unique: a name that several clients share is refused
 * with their key prefixes, so the operator can name one of them exactly.
 */
export async function findApiClient(db: Db, nameOrPrefix: string): Promise<ApiClientRow> {
  const wanted = nameOrPrefix.trim();
  if (wanted === '') throw new ClientLookupError('CLIENT_NOT_FOUND', 'name a client by its name or its key prefix');
  const rows = await db('api_clients')
    .select(CLIENT_COLUMNS)
    .where({ key_prefix: wanted })
    .orWhere({ name: wanted })
    .orderBy('created_at');
  if (rows.length === 0) {
    throw new ClientLookupError('CLIENT_NOT_FOUND', `no API client is named "${wanted}" or has the key prefix "${wanted}" (see client:list)`);
  }
  if (rows.length > 1) {
    const prefixes = rows.map((row) => String(row.key_prefix)).join(', ');
    throw new ClientLookupError('CLIENT_AMBIGUOUS', `${rows.length} API clients answer to "${wanted}" (key prefixes ${prefixes}): name one by its key prefix`);
  }
  return toClientRow(rows[0]);
}
