/**
 * The dev notification provider: a local stand-in for the push/SMS gateway, for development and
 * tests (npm start runs it when NOTIFY_PROVIDER_URL points at this machine). Listens on
 * 127.0.0.1:NOTIFY_PROVIDER_PORT (default 3100); NOTIFY_PROVIDER_DELAY_MS, NOTIFY_PROVIDER_FAIL_RATE
 * and NOTIFY_PROVIDER_DOWN make it slow, flaky or down from the start, POST /control at run time.
 */
import { ConfigError } from '../shared/config.ts';
import { configFromEnv, onShutdown } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { buildDevProvider, devProviderOptionsFromEnv } from '../shared/notifications/dev-provider-app.ts';

const config = configFromEnv(process.env);
let options: ReturnType<typeof devProviderOptionsFromEnv>;
try {
  options = devProviderOptionsFromEnv(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`courier: bad configuration: ${error.message}`);
  process.exit(78);
}
const logger = await createLogger(config, 'provider');

const { port, ...settings } = options;
const app = buildDevProvider({ ...settings, logger });
onShutdown(logger, config.shutdownTimeoutMs, async () => {
  await app.close();
});
await app.listen({ port, host: '127.0.0.1' });
const address = app.server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`;
logger.info(
  { settings },
  `dev provider ready: POST ${base}/v1/messages, delivered messages at GET ${base}/v1/messages, settings at ${base}/control`,
);
