import knexFactory, { type Knex } from 'knex';
import type { Connection } from 'mysql2';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { boundStatements } from './statement-deadline.ts';

export type Db = Knex;

/** Splits a MySQL URL into what mysql2 needs; the database may be left out (for CREATE DATABASE). */
export function mysqlConnection(mysqlUrl: string, opts: { withDatabase?: boolean } = {}) {
  const url = new URL(mysqlUrl);
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    ...(opts.withDatabase === false ? {} : { database: databaseName(mysqlUrl) }),
  };
}

export function databaseName(mysqlUrl: string): string {
  return decodeURIComponent(new URL(mysqlUrl).pathname.replace(/^\//, ''));
}

/**
 * A knex pool on mysql2. BIGINT ids come back as decimal strings (they do not fit a JS number);
 * connecting and acquiring are bounded by dbTimeoutMs so a dead MySQL costs a timeout, not a hang.
 * With `statementTimeoutMs` every statement is bounded too (see boundStatements): the worker's,
 * the notifier's and the CLI's pools; the web bounds each of its steps itself (DB_TIMEOUT_MS).
 */
export function createDb(
  config: Pick<Config, 'mysqlUrl' | 'dbPoolMax' | 'dbTimeoutMs'>,
  opts: { withDatabase?: boolean; logger?: Logger; multipleStatements?: boolean; statementTimeoutMs?: number } = {},
): Db {
  const { logger, statementTimeoutMs } = opts;
  return knexFactory({
    // knex otherwise prints its warnings (e.g. every failed connect) straight to the console.
    ...(logger
      ? {
          log: {
            warn: (message: unknown) => logger.warn({ knex: message }, 'knex warning'),
            error: (message: unknown) => logger.error({ knex: message }, 'knex error'),
            deprecate: (method: string, alternative: string) => logger.warn({ method, alternative }, 'knex deprecation'),
            debug: (message: unknown) => logger.debug({ knex: message }, 'knex debug'),
          },
        }
      : {}),
    client: 'mysql2',
    connection: {
      ...mysqlConnection(config.mysqlUrl, opts),
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: config.dbTimeoutMs,
      timezone: 'Z',
      dateStrings: false,
      charset: 'utf8mb4',
      // Only the intake's own pool sends several statements in one round trip (always with bound values).
      multipleStatements: opts.multipleStatements ?? false,
    },
    pool: {
      min: 0,
      max: config.dbPoolMax,
      acquireTimeoutMillis: config.dbTimeoutMs,
      createTimeoutMillis: config.dbTimeoutMs,
      idleTimeoutMillis: 30_000,
      propagateCreateError: true,
      ...(statementTimeoutMs === undefined
        ? {}
        : {
            afterCreate: (connection: Connection, done: (error: Error | null, connection: Connection) => void) =>
              boundStatements(connection, statementTimeoutMs, (error) => done(error, connection)),
          }),
    },
    acquireConnectionTimeout: config.dbTimeoutMs,
  });
}

const ER_LOCK_DEADLOCK = 1213;

/**
 * A transaction (or a statement) that InnoDB chose as a deadlock victim was rolled back whole;
 * running it again is safe and is what MySQL asks for (at most three tries). Other errors go to
 * the caller.
 */
export async function retryingDeadlocks<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { errno?: number }).errno !== ER_LOCK_DEADLOCK || attempt >= 3) throw error;
    }
  }
}

export function transactionRetryingDeadlocks<T>(db: Db, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return retryingDeadlocks(() => db.transaction(work));
}

/**
 * A value per row for one multi-row UPDATE (`SET col = <this>`): the value of each listed id, and
 * with `elseColumn` the column's own value for rows not listed. Written as
 * `ELT(FIELD(id, <ids>), <values>)`: FIELD finds the row's position in the list with integer
 * comparisons, and at a batch of 500 rows MariaDB spends about a fifth of what `CASE id WHEN
 * CAST(? AS UNSIGNED) THEN ? ...` costs it (bench: 4-5 against 23 µs of mariadbd CPU a row). The
 * ids are checked to be decimal integers and written into the statement as integer literals: bound
 * as strings they would be compared with a BIGINT as doubles, which cannot tell apart ids that
 * differ in their last digits. One value for every row is written as that value.
 */
export function caseById(
  db: Knex,
  pairs: readonly (readonly [id: string, value: unknown])[],
  opts: { readonly elseColumn?: string } = {},
): Knex.Raw {
  if (pairs.length === 0) throw new RangeError('a value per row needs at least one row');
  const values = pairs.map(([, value]) => value) as Knex.RawBinding[];
  const first = values[0];
  const primitive = (value: unknown) => value === null || ['string', 'number', 'boolean'].includes(typeof value);
  if (opts.elseColumn === undefined && values.length > 0 && primitive(first) && values.every((value) => value === first)) {
    return db.raw('?', [first ?? null]);
  }
  for (const [id] of pairs) if (!/^[0-9]{1,20}$/.test(id)) throw new TypeError(`not a row id: ${JSON.stringify(id)}`);
  const list = pairs.map(([id]) => id).join(',');
  const elt = `ELT(FIELD(id, ${list}), ${values.map(() => '?').join(',')})`;
  if (opts.elseColumn === undefined) return db.raw(elt, values);
  return db.raw(`IF(FIELD(id, ${list}) = 0, ??, ${elt})`, [opts.elseColumn, ...values]);
}
