import type { Connection } from 'mysql2';
import type { Db } from './db.ts';

/**
 * The hot intake write runs on a mysql2 connection borrowed from knex's pool, without knex's
 * query builder and transaction machinery: at peak those cost more CPU than the INSERT itself.
 * Everything else goes through knex.
 */
export interface RawConnection {
  query(sql: string, values?: readonly unknown[]): Promise<unknown>;
}

export async function withRawConnection<T>(db: Db, work: (conn: RawConnection) => Promise<T>): Promise<T> {
  const client = db.client as { acquireConnection(): Promise<Connection>; releaseConnection(c: Connection): Promise<unknown> };
  const connection = await client.acquireConnection();
  const raw: RawConnection = {
    query: (sql, values) =>
      new Promise((resolve, reject) => {
        connection.query(sql, (values ?? []) as unknown[] as never, (error, result) => (error ? reject(error) : resolve(result)));
      }),
  };
  try {
    return await work(raw);
  } finally {
    await client.releaseConnection(connection);
  }
}
