/** The worker process: BullMQ workers of the critical order pipeline, CPU steps in piscina threads. */
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { startOrderPipeline, type OrderPipeline } from './order-pipeline.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'worker');

let pipeline: OrderPipeline | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await pipeline?.close();
});
pipeline = await startOrderPipeline(config, logger);
await pipeline.worker.waitUntilReady();
logger.info({ concurrency: config.orderWorkerConcurrency, cpuThreads: config.cpuThreads }, 'worker ready: pricing and dispatching orders');
