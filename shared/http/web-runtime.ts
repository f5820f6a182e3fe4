import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { Authenticator } from '../clients/authenticator.ts';
import type { Config } from '../config.ts';
import { createDb, type Db } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import { IdGenerator } from '../ids.ts';
import type { Logger } from '../logger.ts';
import { MerchantDirectory } from '../merchants/merchant-directory.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { OrderIntake } from '../orders/order-intake.ts';
import { createOrderWriter, invalidationChannel, type OrderWriter } from '../orders/order-writer.ts';
import { OrderReader } from '../cache/order-reader.ts';
import { RecentWriters } from './recent-writers.ts';
import { createQueue } from '../queues/create-queue.ts';
import { enqueueWarmUp } from '../queues/maintenance-producer.ts';
import { QUEUE_NAMES } from '../queues/queue-names.ts';
import { createProducerRedis, createWorkerRedis, type Redis } from '../redis.ts';
import { buildApp } from './build-app.ts';

export interface WebRuntime {
  readonly app: FastifyInstance;
  readonly db: Db;
  readonly redis: Redis;
  readonly queues: readonly Queue[];
  readonly ordersQueue: Queue;
  readonly intake: OrderIntake;
  /** Changes orders through the lock-mark-update-reload routine; owns the order cache. */
  readonly writer: OrderWriter;
  readonly reader: OrderReader;
  /** Resolves once this process listens to invalidations. */
  readonly subscribed: Promise<unknown>;
  readonly metrics: Metrics;
  /** Stops taking requests, lets accepted orders commit and enqueue, then closes every connection. */
  close(): Promise<void>;
}

/** Everything the web process runs, wired from one config: the entrypoint listens, tests inject. */
export async function createWebRuntime(
  config: Config,
  logger: Logger,
  opts: { isShuttingDown?: () => boolean; defaultMetrics?: boolean } = {},
): Promise<WebRuntime> {
  const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics ?? false, processName: 'web' });
  const db = createDb(config, { logger });
  // The intake writes on a pool of its own that may send several statements per round trip.
  const intakeDb = createDb({ ...config, dbPoolMax: config.intakeMaxInFlight + 2 }, { logger, multipleStatements: true });
  const redis = createProducerRedis(config);
  redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'redis connection error'));
  const queues = Object.values(QUEUE_NAMES).map((name) => createQueue(name, { connection: redis, prefix: config.queuePrefix }));
  for (const queue of queues) queue.on('error', (error) => logger.debug({ err: coerceError(error) }, 'queue error'));
  const ordersQueue = queues.find((queue) => queue.name === QUEUE_NAMES.orders)!;

  const intake = new OrderIntake({
    config,
    db: intakeDb,
    ordersQueue,
    ids: new IdGenerator(config.nodeId),
    merchants: new MerchantDirectory(db),
    logger,
    metrics,
  });
  const replica = config.mysqlReplicaUrl ? createDb({ ...config, mysqlUrl: config.mysqlReplicaUrl }, { logger }) : undefined;
  const subscriber = createWorkerRedis(config);
  subscriber.on('error', (error) => logger.debug({ err: coerceError(error) }, 'invalidation subscriber error'));
  let reader: OrderReader | undefined;
  const writer = createOrderWriter(db, redis, config, { onChanged: (record) => reader?.remember(record) });
  reader = new OrderReader({
    cache: writer.cache,
    primary: db,
    ...(replica ? { replica } : {}),
    subscriber,
    invalidationChannel: invalidationChannel(config),
    l1TtlMs: config.l1TtlMs,
    l1Max: config.l1Max,
    logger,
    onRead: (source) => metrics.orderReads.inc({ source }),
    enabled: config.orderCache === 'on',
  });
  // Not awaited: with Redis away at start the web still serves (reads fall back to MySQL, L1 lives
  // its short TTL); ioredis subscribes as soon as Redis is back.
  const subscribed = reader.start().catch((error: unknown) => logger.warn({ err: coerceError(error) }, 'not subscribed to invalidations'));
  const app = await buildApp({
    config,
    db,
    redis,
    logger,
    metrics,
    intake,
    changeOrder: writer.change,
    reader,
    recentWriters: new RecentWriters(config.readYourWritesMs),
    authenticator: new Authenticator(db, { ttlSeconds: config.authCacheTtlSeconds }),
    queues,
    ...(opts.isShuttingDown ? { isShuttingDown: opts.isShuttingDown } : {}),
  });
  if (config.warmupOnStart) {
    // Enqueued, not run: a worker warms the cache; web processes starting in the same minute add one job.
    const maintenanceQueue = queues.find((queue) => queue.name === QUEUE_NAMES.maintenance)!;
    enqueueWarmUp(maintenanceQueue, 'start', new Date(), config.redisTimeoutMs).then(
      (jobId) => logger.info({ jobId }, 'cache warm-up enqueued'),
      (error: unknown) => logger.error({ err: coerceError(error) }, 'cache warm-up not enqueued (the next start or scheduler tick warms the cache)'),
    );
  }

  return {
    app,
    db,
    redis,
    queues,
    ordersQueue,
    intake,
    writer,
    reader,
    subscribed,
    metrics,
    async close() {
      await app.close();
      await intake.idle();
      await Promise.all(queues.map((queue) => queue.close()));
      await reader.close();
      redis.disconnect();
      await Promise.all([db.destroy(), intakeDb.destroy(), replica?.destroy()]);
    },
  };
}
