/** The notifier process: the non-critical notifications queue, isolated from the order pipeline. */
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { startNotifier, type Notifier } from './notifier-pipeline.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'notifier');

let notifier: Notifier | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await notifier?.close();
});
notifier = await startNotifier(config, logger);
await notifier.worker.waitUntilReady();
logger.info(
  { concurrency: config.notifierConcurrency, provider: config.notifyProviderUrl, timeoutMs: config.notifyTimeoutMs },
  'notifier ready: sending notifications',
);
