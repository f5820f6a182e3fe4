import { createServer, type Server } from 'node:http';
import type { RequestListener } from './held-order-reads.ts';

/** The socket bounds of Fastify's options (with its defaults applied) that its own HTTP server takes. */
interface ServerBounds {
  readonly keepAliveTimeout?: unknown;
  readonly requestTimeout?: unknown;
  readonly connectionTimeout?: unknown;
  readonly maxRequestsPerSocket?: unknown;
}

/**
 * The HTTP/1 server Fastify would make for itself (lib/server.js: the same bounds from the same
 * options), with `listener` in front of Fastify's own: Fastify's `serverFactory` gets the options
 * and Fastify's listener, and a server made here must set the bounds itself.
 */
export function createHttpServer(options: ServerBounds, listener: RequestListener): Server {
  const server = createServer(listener);
  server.keepAliveTimeout = ms(options.keepAliveTimeout, 72_000);
  server.requestTimeout = ms(options.requestTimeout, 0);
  server.setTimeout(ms(options.connectionTimeout, 0));
  const perSocket = ms(options.maxRequestsPerSocket, 0);
  if (perSocket > 0) server.maxRequestsPerSocket = perSocket;
  return server;
}

/** Fastify fills in its defaults before it calls the factory; these are the same, should one be missing. */
function ms(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}
