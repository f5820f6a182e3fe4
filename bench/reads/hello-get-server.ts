/**
 * The ceilings for the reads bench: Fastify answering a constant to the very request the order
 * reads get (GET /v1/orders/:id with an Authorization header, which it ignores), so the gap to it
 * is what auth, the read path and the order's JSON cost. GET /healthz answers too.
 *
 * By default the answer is {"hello":"world"} (17 bytes: the hello-world ceiling). With HELLO_BODY
 * set, the answer is that text verbatim, already serialised, with the headers Courier's read sends
 * (content-type, etag, cache-control): the same bytes on the wire as a cached read, and no work.
 *
 * Started by bench/reads/main.ts as its own process; env: PORT (0 = any free port), HOST, LOG_LEVEL,
 * HELLO_BODY. Prints "listening on http://host:port" when ready and closes on SIGTERM
 * (bench/lib/serve-until-signal.ts).
 */
import Fastify, { LogController } from 'fastify';
import { serveUntilSignal } from '../lib/serve-until-signal.ts';

const level = process.env.LOG_LEVEL || 'warn';
const body = process.env.HELLO_BODY;
const app = Fastify({ logger: { level }, logController: new LogController({ disableRequestLogging: true }) });

app.get('/healthz', async () => ({ status: 'ok' }));
if (body) {
  const etag = `"v${(JSON.parse(body) as { version?: number }).version ?? 1}"`;
  app.get('/v1/orders/:id', async (_request, reply) =>
    reply.type('application/json; charset=utf-8').header('etag', etag).header('cache-control', 'private, no-cache').send(body),
  );
} else {
  app.get('/v1/orders/:id', async () => ({ hello: 'world' }));
}

await serveUntilSignal(app, { name: 'hello-get-server', port: Number(process.env.PORT ?? 0), host: process.env.HOST || '127.0.0.1' });
