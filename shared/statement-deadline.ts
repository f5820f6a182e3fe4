import type { Connection } from 'mysql2';

/** How long after MariaDB's own limit a statement's connection is given up as silent. */
export const SILENT_CONNECTION_SLACK_MS = 2000;

const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;

/**
 * Bounds every statement of one pooled connection, in two layers:
 *
 * - MariaDB's `max_statement_time` stops a statement that runs, or waits on a row lock, longer
 *   than `timeoutMs`: the statement fails with errno 1969 and the connection stays usable.
 * - A silent network (a partition, a frozen proxy) never answers at all, and TCP would take about
 *   15 minutes to give up. A statement with no answer `SILENT_CONNECTION_SLACK_MS` after MariaDB's
 *   limit closes its socket: it and everything queued behind it (a ROLLBACK) fail at once as a
 *   fatal connection error, and knex's pool drops the connection.
 *
 * mysql2 has no hook for the second layer (its own query `timeout` leaves the command in flight and
 * the connection looking healthy), so each query's callback is wrapped; knex always passes one.
 */
export function boundStatements(connection: Connection, timeoutMs: number, done: (error: Error | null) => void): void {
  armSilenceBackstop(connection, timeoutMs + SILENT_CONNECTION_SLACK_MS);
  connection.query(`SET SESSION max_statement_time = ${(timeoutMs / 1000).toFixed(3)}`, (error) => {
    // MySQL (not MariaDB) has no such variable; the backstop still bounds a silent connection.
    if (error && error.errno !== ER_UNKNOWN_SYSTEM_VARIABLE) done(error);
    else done(null);
  });
}

function armSilenceBackstop(connection: Connection, backstopMs: number): void {
  const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
  const bounded = (...args: unknown[]): unknown => {
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback !== 'function') return query(...args);
    const timer = setTimeout(() => {
      const error = Object.assign(new Error(`MySQL did not answer a statement within ${backstopMs} ms; its connection was closed`), {
        code: 'STATEMENT_SILENT',
      });
      // Destroying the socket with an error is how mysql2 fails every pending command as fatal.
      (connection as unknown as { stream: { destroy(error: Error): void } }).stream.destroy(error);
    }, backstopMs);
    args[last] = (...result: unknown[]) => {
      clearTimeout(timer);
      (callback as (...values: unknown[]) => void)(...result);
    };
    return query(...args);
  };
  (connection as unknown as { query: typeof bounded }).query = bounded;
}
