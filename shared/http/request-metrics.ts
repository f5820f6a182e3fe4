import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Histogram } from 'prom-client';

type Child = ReturnType<Histogram<'method' | 'route' | 'status'>['labels']>;

/**
 * courier_http_request_seconds, observed once per request through children bound once per
 * method, route and status: prom-client would otherwise sort and join the three labels into a key
 * on every request. The routes and statuses are few, so the children are too.
 */
export function requestTimer(histogram: Histogram<'method' | 'route' | 'status'>) {
  const children = new Map<string, Child>();
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const key = `${request.method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      child = histogram.labels({ method: request.method, route, status: String(status) });
      children.set(key, child);
    }
    child.observe(reply.elapsedTime / 1000);
    done();
  };
}
