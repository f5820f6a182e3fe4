import { createServer, type Server, type ServerOptions } from 'node:http';
import type { RequestListener } from './held-order-reads.ts';

/** What Fastify's own HTTP/1 server is made from: its options, with its defaults filled in before it calls a server factory. */
interface FastifyServerOptions {
  readonly http?: ServerOptions;
  readonly https?: unknown;
  readonly http2?: unknown;
  readonly keepAliveTimeout: number;
  readonly requestTimeout: number;
  readonly connectionTimeout: number;
  readonly maxRequestsPerSocket: number;
}

/**
 * The HTTP/1 server Fastify would make for itself (fastify/lib/server.js: the same options, the same
 * bounds), with `listener` in front of Fastify's own: Fastify's `serverFactory` gets the options and
 * Fastify's listener, and a server made there must set the bounds itself. One difference: with a
 * factory, Fastify listens on one address, so HOST=localhost binds the first it resolves to, not
 * both 127.0.0.1 and ::1.
 */
export function createHttpServer(factoryOptions: Record<string, unknown>, listener: RequestListener): Server {
  const options = factoryOptions as unknown as FastifyServerOptions;
  if (options.https || options.http2) throw new Error('createHttpServer makes an HTTP/1 server: https and http2 are not set up here');
  const server = createServer(options.http ?? {}, listener);
  server.keepAliveTimeout = options.keepAliveTimeout;
  server.requestTimeout = options.requestTimeout;
  server.setTimeout(options.connectionTimeout);
  if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
  return server;
}
