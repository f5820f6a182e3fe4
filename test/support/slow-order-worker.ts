/**
 * A worker process whose pricing thread is deliberately slow (SLOW_TASK_MS), so a test can kill
 * it with SIGKILL while a job is in flight. Otherwise it is workers/orders.ts.
 */
import { configFromEnv } from '../../shared/lifecycle.ts';
import { createLogger } from '../../shared/logger.ts';
import { startOrderPipeline } from '../../workers/order-pipeline.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'slow-worker');
const pipeline = await startOrderPipeline(config, logger, { priceTask: new URL('./slow-price-task.ts', import.meta.url).href });
await pipeline.worker.waitUntilReady();
logger.info('slow worker ready');
