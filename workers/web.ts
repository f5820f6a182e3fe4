/** The web process: the thin intake API, order reads, the queue dashboard, metrics and probes. */
import { DASHBOARD_PATH } from '../shared/http/dashboard.ts';
import { createWebRuntime, type WebRuntime } from './web-runtime.ts';
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';

const config = configFromEnv(process.env);
const logger = await createLogger(config, 'web');

let runtime: WebRuntime | undefined;
const lifecycle = onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await runtime?.close();
});
runtime = await createWebRuntime(config, logger, { isShuttingDown: lifecycle.stopping, defaultMetrics: true });

await runtime.app.listen({ port: config.port, host: config.host });
const address = runtime.app.server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : config.port}`;
logger.info(
  `web listening: API ${base}/v1/orders (docs ${base}/docs), dashboard ${base}${DASHBOARD_PATH}, metrics ${base}/metrics, readiness ${base}/readyz`,
);
