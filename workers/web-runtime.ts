import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { QUEUES, describeJob } from '../jobs/job-types.ts';
import { JobProducer } from '../jobs/producer.ts';
import { OrderReader } from '../shared/cache/order-reader.ts';
import { Authenticator } from '../shared/clients/authenticator.ts';
import { LastUsedRecorder } from '../shared/clients/last-used.ts';
import type { Config } from '../shared/config.ts';
import { createDb, type Db } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import { buildApp } from '../shared/http/build-app.ts';
import { RecentWriters } from '../shared/http/recent-writers.ts';
import { IdGenerator } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import { MerchantDirectory } from '../shared/merchants/merchant-directory.ts';
import type { EdgeMetrics } from '../shared/metrics/edge-metrics.ts';
import { createWebMetrics, type WebMetrics } from '../shared/metrics/process-metrics.ts';
import { OrderIntake } from '../shared/orders/order-intake.ts';
import { keepCompleted } from '../shared/queues/create-queue.ts';
import { createOrderWriter, invalidationChannel } from '../shared/orders/order-writer.ts';
import { mysqlTrackingParts, riderBehindSwitch } from '../shared/orders/tracking.ts';
import type { OrderWriterDeps } from '../shared/orders/write-orders.ts';
import { createProducerRedis, createWorkerRedis, type Redis } from '../shared/redis.ts';
import { openSwitches, type Switches } from '../shared/switches/switches.ts';
import packageJson from '../package.json' with { type: 'json' };

const packageVersion = packageJson.version;

export interface WebRuntime {
  readonly app: FastifyInstance;
  readonly db: Db;
  readonly redis: Redis;
  /** The queues of the table of job types (shown on the dashboard). */
  readonly queues: readonly Queue[];
  readonly producer: JobProducer;
  readonly intake: OrderIntake;
  /** The write routine's parts (order events go through it); owns the order cache. */
  readonly writer: OrderWriterDeps;
  readonly reader: OrderReader;
  /** Resolves once this process listens to invalidations. */
  readonly subscribed: Promise<unknown>;
  readonly metrics: WebMetrics;
  /** The degradation switches as this process reads them (tracking-rider). */
  readonly switches: Switches;
  /** The edge's own metrics (registered on metrics.registry, in the web process only). */
  readonly edgeMetrics: EdgeMetrics;
  /** Which API keys were used; written to api_clients.last_used_at once a minute (and at close). */
  readonly lastUsed: LastUsedRecorder;
  /** Stops taking requests, lets accepted orders commit and enqueue, then closes every connection. */
  close(): Promise<void>;
}

/** Everything the web process runs, wired from one config: the entrypoint listens, tests inject. */
export async function createWebRuntime(
  config: Config,
  logger: Logger,
  opts: { isShuttingDown?: () => boolean; defaultMetrics?: boolean } = {},
): Promise<WebRuntime> {
  const metrics = createWebMetrics({ defaultMetrics: opts.defaultMetrics ?? false });
  const edgeMetrics = metrics.edge;
  const db = createDb(config, { logger });
  // The intake writes on a pool of its own that may send several statements per round trip.
  const intakeDb = createDb({ ...config, dbPoolMax: config.intakeMaxInFlight + 2 }, { logger, multipleStatements: true });
  const redis = createProducerRedis(config);
  redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'redis connection error'));
  // The limiter's own connection: a check that takes longer than RATE_LIMIT_TIMEOUT_MS lets the request
  // through rather than hold it; concurrent checks share round trips (auto-pipelining).
  const rateLimitRedis = createProducerRedis(config, { commandTimeout: config.rateLimitTimeoutMs, enableAutoPipelining: true });
  rateLimitRedis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'rate limiter redis error'));
  const producer = new JobProducer(redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs, removeOnComplete: keepCompleted(config) });
  const switches = openSwitches(config, { logger, metrics, redis });
  const queues = QUEUES.map((name) => producer.queue(name));

  const intake = new OrderIntake({
    config,
    db: intakeDb,
    enqueuePriceBatch: (batch) => producer.add('orders.price', { orderIds: [...batch.orderIds], attempt: batch.attempt, batch: batch.batch }),
    ids: new IdGenerator(config.nodeId),
    merchants: new MerchantDirectory(db),
    logger,
    metrics,
    onShed: () => edgeMetrics.shed.inc({ bound: 'intake_pending' }),
  });
  const replica = config.mysqlReplicaUrl ? createDb({ ...config, mysqlUrl: config.mysqlReplicaUrl }, { logger }) : undefined;
  const subscriber = createWorkerRedis(config);
  subscriber.on('error', (error) => logger.debug({ err: coerceError(error) }, 'invalidation subscriber error'));
  let reader: OrderReader | undefined;
  const writer = createOrderWriter(db, redis, config, {
    logger,
    // This process's L1 learns of its own writes at once; other processes' by the published invalidation.
    onChanged: ({ versions, records }) => {
      for (const { id, version } of versions) reader?.invalidate(id, version);
      for (const record of records) reader?.remember(record);
    },
    enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
    onLocked: metrics.lockObserver('order'),
  });
  reader = new OrderReader({
    cache: writer.cache,
    primary: db,
    ...(replica ? { replica } : {}),
    subscriber,
    invalidationChannel: invalidationChannel(config),
    l1TtlMs: config.l1TtlMs,
    l1Max: config.l1Max,
    logger,
    onRead: metrics.countRead,
    onRefresh: (outcome) => metrics.l1Refreshes.inc({ outcome }),
    enabled: config.orderCache === 'on',
  });
  // Not awaited: with Redis away at start the web still serves (reads fall back to MySQL, L1 lives
  // its short TTL); ioredis subscribes as soon as Redis is back.
  const subscribed = reader.start().catch((error: unknown) => logger.warn({ err: coerceError(error) }, 'not subscribed to invalidations'));
  const lastUsed = new LastUsedRecorder(db, { timeoutMs: config.dbTimeoutMs, logger });
  lastUsed.start();
  const app = await buildApp({
    config,
    db,
    redis,
    logger,
    metrics,
    edgeMetrics,
    rateLimitRedis,
    lastUsed,
    version: packageVersion,
    intake,
    writer,
    reader,
    recentWriters: new RecentWriters(config.readYourWritesMs),
    authenticator: new Authenticator(db, { ttlSeconds: config.authCacheTtlSeconds }),
    queues,
    describeJob,
    tracking: riderBehindSwitch(mysqlTrackingParts(db, { riderTtlMs: config.l1TtlMs, max: config.l1Max }), switches),
    ...(opts.isShuttingDown ? { isShuttingDown: opts.isShuttingDown } : {}),
  });
  if (config.warmupOnStart) {
    // Enqueued, not run: a worker warms the cache; web processes starting in the same minute add one job.
    producer.add('cache.warm-up', { reason: 'start', at: Date.now() }).then(
      (jobId) => logger.info({ jobId }, 'cache warm-up enqueued'),
      (error: unknown) => logger.error({ err: coerceError(error) }, 'cache warm-up not enqueued (the next start or scheduler tick warms the cache)'),
    );
  }

  return {
    app,
    db,
    redis,
    queues,
    producer,
    intake,
    writer,
    reader,
    subscribed,
    metrics,
    switches,
    edgeMetrics,
    lastUsed,
    async close() {
      await app.close();
      await intake.idle();
      await lastUsed.stop();
      await producer.close();
      await reader.close();
      await switches.close();
      redis.disconnect();
      rateLimitRedis.disconnect();
      await Promise.all([db.destroy(), intakeDb.destroy(), replica?.destroy()]);
    },
  };
}
