/**
 * Courier's real intake for the bench: the web runtime (createWebRuntime) exactly as
 * workers/web.ts wires it (same config parsing, graceful SIGTERM, default process metrics on),
 * plus a "listening on http://host:port" line on stdout whatever LOG_LEVEL says, so the bench
 * knows when it is ready and which port PORT=0 picked.
 *
 * Started by bench/intake.ts as its own process; env: MYSQL_URL, REDIS_URL, QUEUE_PREFIX, PORT,
 * HOST, LOG_LEVEL (and any other Courier setting, e.g. INTAKE_BATCH_MAX, DB_POOL_MAX).
 */
import { createWebRuntime, type WebRuntime } from '../shared/http/web-runtime.ts';
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { exitWithParent } from './exit-with-parent.ts';

exitWithParent();
const config = configFromEnv(process.env);
const logger = await createLogger(config, 'web');

let runtime: WebRuntime | undefined;
const lifecycle = onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await runtime?.close();
});
runtime = await createWebRuntime(config, logger, { isShuttingDown: lifecycle.stopping, defaultMetrics: true });

const address = await runtime.app.listen({ port: config.port, host: config.host });
console.log(`listening on ${address}`);
