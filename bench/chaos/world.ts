/**
 * The chaos run's world: a MariaDB and a Redis of its own (fresh, on free ports: the machine's
 * services are never touched, so they can be crashed and restarted), a database with bench zones,
 * merchants, riders and an API client, and the fleet as the Procfile runs it with two workers. Each
 * piece registers its clean-up, so a failed or interrupted run leaves no process, data directory or
 * key behind.
 */
import { createApiClient } from '../../shared/clients/create-client.ts';
import { loadConfig, type Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { openBenchDatabase } from '../lib/bench-database.ts';
import { benchMerchants, insertMerchants, insertRiders, orderBodies } from '../lib/bench-zones.ts';
import { Fleet } from '../lib/fleet/fleet.ts';
import { fmt, log } from '../lib/log.ts';
import { PrivateMariaDb } from '../lib/process/private-mariadb.ts';
import { PrivateRedis } from '../lib/process/private-redis.ts';
import type { BenchRun } from '../lib/run-bench.ts';
import { fleetSettings, type ChaosSettings } from './settings.ts';

const DATABASE = 'courier_bench_chaos';
/** The fleet's BullMQ prefix (its Redis is its own; the prefix is Courier's shape, a hash tag). */
export const QUEUE_PREFIX = '{courier-chaos}';

export interface World {
  readonly mariadb: PrivateMariaDb;
  readonly redis: PrivateRedis;
  readonly db: Db;
  readonly fleet: Fleet;
  /** What the fleet runs with (loadConfig of its environment). */
  readonly fleetConfig: Config;
  readonly fleetSettings: Record<string, string>;
  readonly apiKey: string;
  /** Valid order bodies, one per merchant. */
  readonly bodies: readonly string[];
  readonly riders: { readonly count: number; readonly capacity: number };
}

/** Orders the run may accept at most (its valid load and the duplicates scenario's new keys), with room to spare. */
function expectedOrders(s: ChaosSettings): number {
  const perScenario = s.rate * (2 * s.calmSeconds + s.faultSeconds + 2) * 1.5;
  return Math.ceil(perScenario * s.scenarios.length);
}

export async function setUpWorld(s: ChaosSettings, run: BenchRun): Promise<World> {
  const mariadb = await PrivateMariaDb.create();
  run.onCleanup('stop the private mariadbd and remove its data directory', () => mariadb.stop());
  await mariadb.start();
  log(`chaos: a mariadbd of its own on 127.0.0.1:${mariadb.port}, data directory ${mariadb.dataDir}`);
  const redis = await PrivateRedis.start();
  run.onCleanup('stop the private redis-server', () => redis.stop());
  log(`chaos: a redis-server of its own on ${redis.url} (no persistence, as Courier runs it)`);

  const mysqlUrl = mariadb.url(DATABASE);
  const { db, migrations } = await openBenchDatabase(loadConfig({ MYSQL_URL: mysqlUrl, REDIS_URL: redis.url }), { fresh: true });
  run.onCleanup('close the database pool', () => db.destroy());
  const merchants = benchMerchants(s.zones);
  await insertMerchants(db, merchants);
  // Nobody delivers during the run, so every rider keeps what it is given: room for all of it.
  const capacity = Math.max(5, Math.ceil(expectedOrders(s) / (s.zones * s.ridersPerZone)));
  const riderCount = await insertRiders(db, merchants, s.ridersPerZone, capacity);
  const client = await createApiClient(db, new IdGenerator(1), `chaos ${new Date().toISOString()}`);
  log(`chaos: database ${DATABASE} (${migrations.length} migrations), ${s.zones} zones, ${fmt(riderCount)} riders of capacity ${capacity}`);

  const settingsForFleet = fleetSettings();
  const fleet = await Fleet.create({
    logLevel: s.logLevel,
    copies: { worker: 2 },
    echoAfterReady: false, // the faults make them warn, by design; the counts by kind are printed when they stop
    env: { MYSQL_URL: mysqlUrl, REDIS_URL: redis.url, QUEUE_PREFIX, CACHE_PREFIX: 'courier-chaos-cache', ...settingsForFleet },
  });
  run.onCleanup('stop the fleet', () => fleet.stop());
  const fleetConfig = loadConfig(fleet.processEnv); // a bad value stops the run here, before any process starts
  await fleet.start(fleet.names);
  return { mariadb, redis, db, fleet, fleetConfig, fleetSettings: settingsForFleet, apiKey: client.key, bodies: orderBodies(merchants), riders: { count: riderCount, capacity } };
}
