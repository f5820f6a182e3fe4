import type { Db } from '../db.ts';
import { CLIENT_COLUMNS, toClientRow, type ApiClientRow } from './client-row.ts';

/** Every API client, oldest first, revoked ones included. */
export async function listApiClients(db: Db): Promise<ApiClientRow[]> {
  const rows = await db('api_clients').select(CLIENT_COLUMNS).orderBy('created_at').orderBy('id');
  return rows.map(toClientRow);
}
