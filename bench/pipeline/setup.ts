/**
 * The pipeline bench's world: a fresh database of its own with bench zones, merchants and riders
 * and an API client; a Redis of its own (or the shared one under the bench's prefixes); the fleet
 * as the Procfile runs it; a rider simulator standing in for deliveries. Each piece registers its
 * own clean-up, so a failed or interrupted run leaves nothing behind.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { MAX_RATE_PER_SECOND, loadConfig, type Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { QUEUE_NAMES } from '../../shared/queues/queue-names.ts';
import { dropBenchDatabase, openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders, type BenchMerchant } from '../lib/bench-zones.ts';
import { mariadbPids, type CpuGroups } from '../lib/cpu.ts';
import { Fleet } from '../lib/fleet/fleet.ts';
import { fmt, log } from '../lib/log.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import { deleteKeysUnder, redisPid } from '../lib/redis-keys.ts';
import { RiderSimulator } from '../lib/rider-simulator.ts';
import type { BenchRun } from '../lib/run-bench.ts';
import { FLEET_DEFAULTS, type PipelineSettings } from './settings.ts';

/** The bench's client may go as fast as the load: the rate limiter's check runs (and costs what it costs), it never refuses. */
const BENCH_RATE = { ratePerSecond: MAX_RATE_PER_SECOND };

export const QUEUE_PREFIX = '{courier-bench-pipe}';
/** The fleet's order cache and locks, apart from anyone else's: its memory is reported on its own. */
export const CACHE_PREFIX = 'courier-bench-pipe-cache';

export interface World {
  readonly db: Db;
  readonly redis: Redis;
  readonly redisUrl: string;
  readonly fleet: Fleet;
  readonly fleetConfig: Config;
  readonly apiKey: string;
  readonly merchants: readonly BenchMerchant[];
  readonly riders: RiderSimulator;
  readonly queues: readonly Queue[];
  readonly cpuGroups: CpuGroups;
}

export async function setUpWorld(s: PipelineSettings, run: BenchRun): Promise<World> {
  let redisUrl = s.redisUrl;
  if (s.privateRedis) {
    const server = await PrivateRedis.start();
    run.onCleanup('stop the private redis-server', () => server.stop());
    redisUrl = server.url;
    log(`bench: a redis-server of the bench's own on ${redisUrl} (no persistence)`);
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  run.onCleanup('disconnect from Redis', async () => redis.disconnect());
  if (!s.privateRedis) {
    run.onCleanup('delete the bench keys', () => deleteKeysUnder(redis, [QUEUE_PREFIX, CACHE_PREFIX]));
    const stale = await deleteKeysUnder(redis, [QUEUE_PREFIX, CACHE_PREFIX]);
    if (stale) log(`bench: deleted ${fmt(stale)} keys an earlier run left under ${QUEUE_PREFIX} / ${CACHE_PREFIX}`);
  }

  const benchConfig = loadConfig({ MYSQL_URL: s.mysqlUrl, REDIS_URL: redisUrl });
  const { db, name, migrations } = await openBenchDatabase(benchConfig, { fresh: true });
  run.onCleanup('close the database pool', () => db.destroy());
  if (!s.keepDatabase) run.onCleanup(`drop the database ${name}`, () => dropBenchDatabase(benchConfig));
  log(`bench: database ${name} dropped, created and migrated (${migrations.length} migrations)`);
  const merchants = benchMerchants(s.zones);
  await insertMerchants(db, merchants);
  const riderCount = await insertRiders(db, merchants, s.ridersPerZone, s.riderCapacity);
  const client = await createApiClient(db, new IdGenerator(benchConfig.nodeId), `pipeline bench ${new Date().toISOString()}`, BENCH_RATE);
  log(
    `bench: ${s.zones} zones, a merchant each, ${fmt(riderCount)} riders of capacity ${s.riderCapacity}; a rider simulator frees ` +
      `every rider's slots every ${s.riderResetMs} ms (standing in for deliveries)`,
  );

  const fleet = await Fleet.create({
    logLevel: s.logLevel,
    env: {
      MYSQL_URL: s.mysqlUrl,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX,
      CACHE_PREFIX,
      // The scheduler's warm-up would preload every active order mid-run: the cache is measured here.
      WARMUP_CRON: process.env.WARMUP_CRON ?? '',
      ...FLEET_DEFAULTS,
    },
  });
  run.onCleanup('stop the fleet', () => fleet.stop());
  const fleetConfig = loadConfig(fleet.processEnv); // what the fleet runs with (a bad value stops us here)
  await fleet.start(fleet.names);

  const riders = new RiderSimulator(db, s.riderResetMs);
  riders.start();
  run.onCleanup('stop the rider simulator', () => riders.stop());
  const queues = Object.values(QUEUE_NAMES).map((q) => new Queue(q, { connection: redis, prefix: QUEUE_PREFIX }));
  run.onCleanup('close the queue handles', () => Promise.all(queues.map((q) => q.close())));

  const redisServer = await redisPid(redis);
  const cpuGroups: CpuGroups = { ...fleet.cpuGroups(), mariadbd: mariadbPids, redis: () => (redisServer === null ? [] : [redisServer]) };
  return { db, redis, redisUrl, fleet, fleetConfig, apiKey: client.key, merchants, riders, queues, cpuGroups };
}

export { orderBodies } from '../lib/bench-zones.ts';

/** MySQL's clock, to the microsecond (orders and events are stamped by it). */
export async function mysqlNow(db: Db): Promise<string> {
  return ((await db.raw("SELECT DATE_FORMAT(NOW(6), '%Y-%m-%d %H:%i:%s.%f') AS t")) as [{ t: string }[]])[0][0]!.t;
}
