import { configFromEnv, onShutdown } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { createWorkerRedis } from './redis.ts';

/**
 * A Procfile process whose work has not landed yet: it reads its config, connects to Redis,
 * says what it is waiting for, and stops cleanly on SIGTERM, so the fleet's shape runs today.
 */
export async function runStandbyProcess(name: string, waitingFor: string): Promise<void> {
  const config = configFromEnv(process.env);
  const logger = await createLogger(config, name);
  const redis = createWorkerRedis(config);
  redis.on('error', () => undefined);
  onShutdown(logger, config.shutdownTimeoutMs, async () => {
    redis.disconnect();
  });
  await redis.ping();
  logger.info(`${name} ready (standby: ${waitingFor})`);
}
