/** The scheduler process: node-cron ticks that only enqueue maintenance jobs; the workers run them. */
import { ConfigError } from '../shared/config.ts';
import { coerceError } from '../shared/errors/index.ts';
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { serveMetrics, type MetricsServer } from '../shared/metrics/metrics-server.ts';
import { createSchedulerMetrics } from '../shared/metrics/process-metrics.ts';
import { JobProducer } from '../jobs/producer.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { openSwitches } from '../shared/switches/switches.ts';
import { createSchedulerTicks, scheduleMaintenance, type Schedule } from './scheduler-ticks.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'scheduler');

const redis = createProducerRedis(config);
redis.on('error', (error) => logger.debug({ err: coerceError(error) }, 'redis connection error'));
const producer = new JobProducer(redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs });
const metrics = createSchedulerMetrics({ defaultMetrics: true });
// The warm-up switch: a tick while it is off enqueues nothing.
const switches = openSwitches(config, { logger, metrics, redis });

let schedule: Schedule | undefined;
let metricsServer: MetricsServer | undefined;
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await schedule?.stop();
  await metricsServer?.close();
  await producer.close();
  await switches.close();
  redis.disconnect();
});

try {
  schedule = scheduleMaintenance(config, createSchedulerTicks({ producer, logger }), logger, { switches, onTick: (job, outcome) => metrics.ticks.inc({ job, outcome }) });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`courier: bad configuration: ${error.message}`);
  process.exit(78);
}
if (config.metricsPort > 0) metricsServer = await serveMetrics(metrics, { port: config.metricsPort, host: config.metricsHost, logger });
// Ready once Redis answers (a tick meanwhile would retry its enqueue).
if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
const specs = (list: readonly string[], variable: string) => list.join('; ') || `(none: ${variable} is empty)`;
logger.info(
  {
    warmUp: config.warmupCron,
    compensate: config.compensateCron,
    reconcile: config.reconcileCron,
    next: schedule.tasks.map((task) => task.getNextRun()?.toISOString() ?? null),
  },
  `scheduler ready: warm-up at ${specs(config.warmupCron, 'WARMUP_CRON')}, compensation at ${specs(config.compensateCron, 'COMPENSATE_CRON')}, ` +
    `reconciliation at ${specs(config.reconcileCron, 'RECONCILE_CRON')}`,
);
