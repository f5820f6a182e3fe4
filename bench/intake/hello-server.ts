/**
 * The ceiling for the intake bench: Fastify answering a constant. It takes the very same request
 * the intake servers get (POST /v1/orders with the same JSON body and headers, which Fastify still
 * parses), so the gap to it is what validation, auth and the writes cost; GET / answers too.
 *
 * Started by bench/intake/main.ts as its own process; env: PORT (0 = any free port), HOST, LOG_LEVEL.
 * Prints "listening on http://host:port" when ready and closes on SIGTERM (bench/lib/serve-until-signal.ts).
 */
import Fastify, { LogController } from 'fastify';
import { serveUntilSignal } from '../lib/serve-until-signal.ts';

const level = process.env.LOG_LEVEL || 'warn';
const app = Fastify({ logger: { level }, logController: new LogController({ disableRequestLogging: true }) });

app.get('/', async () => ({ hello: 'world' }));
app.post('/v1/orders', async () => ({ hello: 'world' }));

await serveUntilSignal(app, { name: 'hello-server', port: Number(process.env.PORT ?? 0), host: process.env.HOST || '127.0.0.1' });
