/** The notifier process: the non-critical notifications queue, isolated from the order pipeline. */
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { coerceError } from '../shared/errors/index.ts';
import { serveMetrics, type MetricsServer } from '../shared/metrics/metrics-server.ts';
import { createNotifierMetrics } from '../shared/metrics/process-metrics.ts';
import { startNotifier, type Notifier } from './notifier-pipeline.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'notifier');

const metrics = createNotifierMetrics({
  defaultMetrics: true,
  queueCountTimeoutMs: config.redisTimeoutMs,
  onQueueCountFailed: (queue, error) => logger.debug({ err: coerceError(error), queue }, 'queue counts left out of the scrape'),
});

let notifier: Notifier | undefined;
let metricsServer: MetricsServer | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await notifier?.close();
  await metricsServer?.close();
});
notifier = await startNotifier(config, logger, { metrics });
if (config.metricsPort > 0) metricsServer = await serveMetrics(metrics, { port: config.metricsPort, host: config.metricsHost, logger });
await Promise.all([notifier.worker.waitUntilReady(), notifier.switches.settled]);
logger.info(
  { concurrency: config.notifierConcurrency, provider: config.notifyProviderUrl, timeoutMs: config.notifyTimeoutMs },
  `notifier ready: ${notifier.switches.hasRead && !notifier.switches.isOn('notifications') ? 'holding notifications (the notifications switch is off)' : 'sending notifications'}`,
);
