/** The web process: the thin intake API, order reads, the queue dashboard, metrics and probes. */
import { Authenticator } from '../shared/clients/authenticator.ts';
import { createDb } from '../shared/db.ts';
import { coerceError } from '../shared/errors/index.ts';
import { buildApp } from '../shared/http/build-app.ts';
import { DASHBOARD_PATH } from '../shared/http/dashboard.ts';
import { IdGenerator } from '../shared/ids.ts';
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { MerchantDirectory } from '../shared/merchants/merchant-directory.ts';
import { createMetrics } from '../shared/metrics.ts';
import { OrderIntake } from '../shared/orders/order-intake.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createProducerRedis } from '../shared/redis.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'web');
const metrics = createMetrics({ defaultMetrics: true, processName: 'web' });
const db = createDb(config);
const redis = createProducerRedis(config);
redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'redis connection error'));
const queues = Object.values(QUEUE_NAMES).map((name) =>
  createQueue(name, { connection: redis, prefix: config.queuePrefix }),
);
const ordersQueue = queues.find((queue) => queue.name === QUEUE_NAMES.orders)!;
for (const queue of queues) queue.on('error', (error) => logger.debug({ err: coerceError(error) }, 'queue error'));

const intake = new OrderIntake({
  config,
  db,
  ordersQueue,
  ids: new IdGenerator(config.nodeId),
  merchants: new MerchantDirectory(db),
  logger,
  metrics,
});

const lifecycle = onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await app.close(); // stops accepting, answers what is in flight
  await intake.idle(); // every accepted order committed and its enqueue settled
  await Promise.all(queues.map((queue) => queue.close()));
  redis.disconnect();
  await db.destroy();
});

const app = await buildApp({
  config,
  db,
  redis,
  logger,
  metrics,
  intake,
  authenticator: new Authenticator(db, { ttlSeconds: config.authCacheTtlSeconds }),
  queues,
  isShuttingDown: lifecycle.stopping,
});

await app.listen({ port: config.port, host: config.host });
const base = `http://127.0.0.1:${config.port}`;
logger.info(
  { api: `${base}/v1/orders`, dashboard: `${base}${DASHBOARD_PATH}`, metrics: `${base}/metrics`, readyz: `${base}/readyz` },
  `web listening: API ${base}/v1/orders, dashboard ${base}${DASHBOARD_PATH}, metrics ${base}/metrics`,
);
