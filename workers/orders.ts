/** The worker process: BullMQ workers of the critical order pipeline (CPU steps in piscina threads) and of the maintenance jobs. */
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { coerceError } from '../shared/errors/index.ts';
import { serveMetrics, type MetricsServer } from '../shared/metrics/metrics-server.ts';
import { createWorkerMetrics } from '../shared/metrics/process-metrics.ts';
import { startMaintenance, type Maintenance } from './maintenance-pipeline.ts';
import { startOrderPipeline, type OrderPipeline } from './order-pipeline.ts';
import { createWorkerServices } from './worker-services.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'worker');

const metrics = createWorkerMetrics({
  defaultMetrics: true,
  queueCountTimeoutMs: config.redisTimeoutMs,
  onQueueCountFailed: (queue, error) => logger.debug({ err: coerceError(error), queue }, 'queue counts left out of the scrape'),
});
const owned = createWorkerServices(config, logger, { metrics });

let pipeline: OrderPipeline | undefined;
let maintenance: Maintenance | undefined;
let metricsServer: MetricsServer | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  const closed = await Promise.allSettled([pipeline?.close(), maintenance?.close(), metricsServer?.close()]);
  await owned.close();
  for (const result of closed) if (result.status === 'rejected') throw result.reason;
});
pipeline = await startOrderPipeline(config, logger, { services: owned.services });
maintenance = await startMaintenance(config, logger, { services: owned.services });
if (config.metricsPort > 0) metricsServer = await serveMetrics(metrics, { port: config.metricsPort, host: config.metricsHost, logger });
await Promise.all([pipeline.worker.waitUntilReady(), pipeline.dispatchWorker.waitUntilReady(), maintenance.worker.waitUntilReady()]);
logger.info(
  { concurrency: config.orderWorkerConcurrency, dispatchConcurrency: config.dispatchWorkerConcurrency, cpuThreads: config.cpuThreads },
  'worker ready: pricing and dispatching orders in batches, running maintenance jobs (cache warm-up, compensation, reconciliation)',
);
