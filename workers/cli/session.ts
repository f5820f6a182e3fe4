/**
 * What the operator commands share: their logger, MySQL and Redis opened on demand (each within a
 * bound, or a one-line reason), the SIGINT handling and the progress bar of a run that changes
 * orders. knex, ioredis, bullmq and cli-progress are loaded here only when a command opens them,
 * so `--help` and the commands that need none of them start in a fraction of a second.
 */
import { once } from 'node:events';
import { pino } from 'pino';
import type { Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { loggerOptions, type Logger } from '../../shared/logger.ts';
import type { Redis } from '../../shared/redis.ts';
import { withDeadline } from '../../shared/with-deadline.ts';
import type { OrderMaintenance } from '../order-maintenance.ts';
import { reasonOf } from './format.ts';

/**
 * A logger for the commands' own runs: warnings and errors only, on stderr (stdout carries the
 * report), with the processes' redaction and error scrubbing (shared/logger.ts).
 */
export function cliLogger(config: Pick<Config, 'logLevel'>, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  const level = config.logLevel === 'silent' ? 'silent' : 'warn';
  return pino(loggerOptions({ logLevel: level }, 'cli'), destination);
}

/** A pool on MySQL that has answered once, or a one-line reason within about twice DB_TIMEOUT_MS. */
export async function openDb(config: Config, logger: Logger): Promise<Db> {
  const { createDb, databaseName } = await import('../../shared/db.ts');
  // knex warns of every failed connect with a stack; the command reports the failure in one line.
  const db = createDb(config, {
    logger: logger.child({}, { level: logger.level === 'silent' ? 'silent' : 'error' }),
    statementTimeoutMs: config.dbStatementTimeoutMs,
  });
  try {
    await withDeadline(db.raw('SELECT 1'), config.dbTimeoutMs * 2);
    return db;
  } catch (error) {
    await withDeadline(db.destroy(), config.dbTimeoutMs).catch(() => undefined);
    const url = new URL(config.mysqlUrl);
    const reason =
      error instanceof Error && (error.name === 'KnexTimeoutError' || error.name === 'DeadlineExceeded')
        ? `no answer within ${config.dbTimeoutMs} ms (DB_TIMEOUT_MS)`
        : reasonOf(error);
    throw new Error(`MySQL is not reachable at ${url.hostname}:${url.port || 3306}/${databaseName(config.mysqlUrl)}: ${reason}`);
  }
}

/** A Redis connection that is ready, or a one-line reason within about five REDIS_TIMEOUT_MS. */
export async function openRedis(config: Config): Promise<Redis> {
  const { createProducerRedis } = await import('../../shared/redis.ts');
  const redis = createProducerRedis(config);
  redis.on('error', () => undefined); // the command's own calls report their failures
  try {
    if (redis.status !== 'ready') await withDeadline(once(redis, 'ready'), config.redisTimeoutMs * 5);
    return redis;
  } catch (error) {
    redis.disconnect();
    const url = new URL(config.redisUrl);
    throw new Error(`Redis is not reachable at ${url.hostname}:${url.port || 6379}: ${reasonOf(error)}`);
  }
}

/** The first SIGINT stops a run between two batches (what is done stays done); a second one exits at once. */
export function onInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = () => {
    process.stderr.write('\ninterrupted: stopping after the batch in flight (Ctrl-C again to exit now)\n');
    controller.abort(new Error('interrupted (SIGINT): stopped between two batches; what was done before stays done'));
    process.off('SIGINT', handler);
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', handler) };
}

/** A progress bar on stderr: drawn on a terminal only (piped or in CI it stays silent, the report says it all). */
export interface ProgressBar {
  start(total: number, value: number, payload: object): void;
  update(value: number, payload?: object): void;
  setTotal(total: number): void;
  /** Stops it if it is running; safe to call again. */
  stop(): void;
}

export async function progressBar(format: string): Promise<ProgressBar> {
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar({ format, hideCursor: true }, cliProgress.Presets.shades_classic);
  let running = false;
  return {
    start: (total, value, payload) => {
      bar.start(total, value, payload);
      running = true;
    },
    update: (value, payload) => bar.update(value, payload ?? {}),
    setTotal: (total) => bar.setTotal(total),
    stop: () => {
      if (running) bar.stop();
      running = false;
    },
  };
}

export interface OperatorSession {
  readonly db: Db;
  /** Aborted by the first SIGINT: stop between two batches. */
  readonly signal: AbortSignal;
  /** The command's progress bar; stopped, if it is running, when the session ends. */
  readonly bar: ProgressBar;
  /** Redis and the maintenance runs, opened on first use (a dry run may need neither). */
  maintenance(): Promise<OrderMaintenance>;
}

/**
 * What an operator command that changes orders holds for its run: MySQL, the SIGINT handler, a
 * progress bar and, on demand, Redis with the maintenance runs (workers/order-maintenance.ts: the
 * same routines compensation and the reconciler run); all of it closed when the run ends, however
 * it ends.
 */
export async function operatorSession(config: Config, logger: Logger, barFormat: string, run: (session: OperatorSession) => Promise<void>): Promise<void> {
  const db = await openDb(config, logger);
  const interrupt = onInterrupt();
  let redis: Redis | undefined;
  let maintenance: OrderMaintenance | undefined;
  let bar: ProgressBar | undefined;
  try {
    bar = await progressBar(barFormat);
    await run({
      db,
      signal: interrupt.signal,
      bar,
      maintenance: async () => {
        redis ??= await openRedis(config);
        if (!maintenance) {
          const { createOrderMaintenance } = await import('../order-maintenance.ts');
          maintenance = createOrderMaintenance(config, { db, redis, logger });
        }
        return maintenance;
      },
    });
  } finally {
    bar?.stop();
    interrupt.dispose();
    await maintenance?.close();
    redis?.disconnect();
    await db.destroy();
  }
}
