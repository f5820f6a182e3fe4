import type { Logger } from './logger.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { coerceError } from './errors/index.ts';
import { withDeadline } from './with-deadline.ts';

/**
 * Reads the configuration for an entrypoint; a bad value stops the process at once with a message
 * naming the variable (exit code 78, EX_CONFIG).
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`courier: bad configuration: ${error.message}`);
      process.exit(78);
    }
    throw error;
  }
}

/**
 * Graceful shutdown: on SIGTERM or SIGINT run the steps in order (stop taking work, drain, close
 * connections), bounded by timeoutMs in all; a second signal or the bound exits at once.
 */
export function onShutdown(logger: Logger, timeoutMs: number, stop: () => Promise<void>): { readonly stopping: () => boolean } {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'shutting down');
    withDeadline(stop(), timeoutMs).then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: coerceError(error) }, 'shutdown did not finish cleanly');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return { stopping: () => stopping };
}
