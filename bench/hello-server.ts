/**
 * The ceiling for the intake bench: Fastify answering a constant. It takes the very same request
 * the intake servers get (POST /v1/orders with the same JSON body and headers, which Fastify still
 * parses), so the gap to it is what validation, auth and the writes cost; GET / answers too.
 *
 * Started by bench/intake.ts as its own process; env: PORT (0 = any free port), HOST, LOG_LEVEL.
 * Prints "listening on http://host:port" when ready and closes on SIGTERM.
 */
import Fastify, { LogController } from 'fastify';
import { exitWithParent } from './exit-with-parent.ts';

exitWithParent();
const level = process.env.LOG_LEVEL || 'warn';
const app = Fastify({ logger: { level }, logController: new LogController({ disableRequestLogging: true }) });

app.get('/', async () => ({ hello: 'world' }));
app.post('/v1/orders', async () => ({ hello: 'world' }));

let closing = false;
async function shutdown(): Promise<void> {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  await app.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

const address = await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST || '127.0.0.1' });
console.log(`listening on ${address}`);
