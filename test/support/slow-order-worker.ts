/**
 * A worker process whose pricing thread is deliberately slow (SLOW_TASK_MS), so a test can signal
 * or kill it while a job is in flight. Otherwise it is workers/orders.ts.
 */
import { configFromEnv, onShutdown } from '../../shared/lifecycle.ts';
import { createLogger } from '../../shared/logger.ts';
import { startOrderPipeline, type OrderPipeline } from '../../workers/order-pipeline.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'slow-worker');
let pipeline: OrderPipeline | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await pipeline?.close();
});
pipeline = await startOrderPipeline(config, logger, { priceTask: new URL('./slow-price-task.ts', import.meta.url).href });
await pipeline.worker.waitUntilReady();
logger.info('slow worker ready');
