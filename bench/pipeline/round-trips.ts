/**
 * The round trips the fleet makes, counted from outside at two moments: MySQL statements (SHOW
 * GLOBAL STATUS: Questions and the Com_* counters), Redis commands (INFO: total_commands_processed
 * and commandstats), BullMQ jobs added per queue (each queue's id counter, <prefix>:<queue>:id,
 * which every add increments whatever the job's name or id) and provider calls (the dev provider's
 * request counter). Divided by the orders dispatched in between: round trips per order.
 * MariaDB is shared with whoever else uses this machine: its counters are an upper bound here.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../../shared/db.ts';
import { QUEUE_NAMES } from '../../shared/queues/queue-names.ts';

const MYSQL_COUNTERS = ['Questions', 'Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_begin', 'Com_commit', 'Com_rollback'];

export interface RoundTripCounters {
  readonly mysql: Record<string, number>;
  readonly redisCommands: number;
  readonly redisByCommand: Record<string, number>;
  readonly jobsAdded: Record<string, number>;
  readonly providerRequests: number | null;
}

export async function readRoundTrips(opts: { db: Db; redis: Redis; queuePrefix: string; providerStats: () => Promise<Record<string, number> | null> }): Promise<RoundTripCounters> {
  const { db, redis, queuePrefix } = opts;
  const queues = Object.values(QUEUE_NAMES);
  const [status, stats, commandstats, ids, provider] = await Promise.all([
    db.raw(`SHOW GLOBAL STATUS WHERE Variable_name IN (${MYSQL_COUNTERS.map(() => '?').join(', ')})`, MYSQL_COUNTERS) as unknown as Promise<[{ Variable_name: string; Value: string }[]]>,
    redis.info('stats'),
    redis.info('commandstats'),
    redis.mget(...queues.map((q) => `${queuePrefix}:${q}:id`)),
    opts.providerStats(),
  ]);
  const redisByCommand: Record<string, number> = {};
  for (const m of commandstats.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) redisByCommand[m[1]!] = Number(m[2]);
  return {
    mysql: Object.fromEntries(status[0].map((r) => [r.Variable_name, Number(r.Value)])),
    redisCommands: Number(/^total_commands_processed:(\d+)/m.exec(stats)?.[1] ?? Number.NaN),
    redisByCommand,
    jobsAdded: Object.fromEntries(queues.map((q, i) => [q, Number(ids[i] ?? 0)])),
    providerRequests: provider?.requests ?? null,
  };
}

export interface RoundTripsPerOrder {
  readonly orders: number;
  /** MySQL statements (Questions) per order, and each Com_* counter's share. */
  readonly mysqlStatements: number | null;
  readonly mysqlByKind: Record<string, number>;
  readonly redisCommands: number | null;
  /** The commands that make up most of it, per order. */
  readonly redisTopCommands: Record<string, number>;
  readonly jobsAdded: number;
  readonly jobsAddedByQueue: Record<string, number>;
  readonly providerCalls: number | null;
}

/** The deltas between two readings, per order. */
export function roundTripsPerOrder(a: RoundTripCounters, b: RoundTripCounters, orders: number): RoundTripsPerOrder {
  const per = (delta: number) => (orders > 0 ? delta / orders : Number.NaN);
  const mysqlByKind: Record<string, number> = {};
  for (const key of Object.keys(b.mysql)) if (key !== 'Questions') mysqlByKind[key] = per((b.mysql[key] ?? 0) - (a.mysql[key] ?? 0));
  const commands = Object.keys(b.redisByCommand)
    .map((c) => [c, (b.redisByCommand[c] ?? 0) - (a.redisByCommand[c] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 8);
  const jobsAddedByQueue: Record<string, number> = {};
  let jobs = 0;
  for (const q of Object.keys(b.jobsAdded)) {
    const delta = (b.jobsAdded[q] ?? 0) - (a.jobsAdded[q] ?? 0);
    jobsAddedByQueue[q] = per(delta);
    jobs += delta;
  }
  return {
    orders,
    mysqlStatements: per((b.mysql.Questions ?? 0) - (a.mysql.Questions ?? 0)),
    mysqlByKind,
    redisCommands: per(b.redisCommands - a.redisCommands),
    redisTopCommands: Object.fromEntries(commands.map(([c, n]) => [c, per(n)])),
    jobsAdded: per(jobs),
    jobsAddedByQueue,
    providerCalls: a.providerRequests === null || b.providerRequests === null ? null : per(b.providerRequests - a.providerRequests),
  };
}
