/**
 * The reference for issue 10's intake target (Courier >= 0.3x its req/s at p99 <= 25 ms): Fastify
 * taking the very request the intake gets (POST /v1/orders, the same JSON body, which Fastify
 * parses) and answering 202 with an id, as Courier does, with nothing validated, checked or
 * stored. The gap to it is what Courier's intake does for an order.
 *
 * Started by bench/intake/main.ts as its own process; env: PORT (0 = any free port), HOST,
 * LOG_LEVEL. Prints "listening on http://host:port" when ready and closes on SIGTERM.
 */
import Fastify, { LogController } from 'fastify';
import { serveUntilSignal } from '../lib/serve-until-signal.ts';

const level = process.env.LOG_LEVEL || 'warn';
const app = Fastify({ logger: { level }, logController: new LogController({ disableRequestLogging: true }) });
let next = 0;

app.post('/v1/orders', async (request, reply) => {
  // Touch the parsed body, so its parsing cannot be skipped.
  const merchantId = (request.body as { merchantId?: unknown } | undefined)?.merchantId;
  next += 1;
  return reply.code(202).send({ id: `${typeof merchantId === 'string' ? merchantId : '0'}${next}`, status: 'CREATED' });
});

await serveUntilSignal(app, { name: 'echo-server', port: Number(process.env.PORT ?? 0), host: process.env.HOST || '127.0.0.1' });
