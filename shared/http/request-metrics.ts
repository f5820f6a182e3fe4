import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter, Histogram } from 'prom-client';
import { errorCodeOf } from './error-handler.ts';

type Child = ReturnType<Histogram<'method' | 'route' | 'status'>['labels']>;

/**
 * courier_http_request_seconds, observed once per request (and courier_http_errors_total per error answer) through children bound once per
 * method, route and status: prom-client would otherwise sort and join the three labels into a key
 * on every request. The routes and statuses are few, so the children are too.
 */
export function requestTimer(histogram: Histogram<'method' | 'route' | 'status'>, errors: Counter<'route' | 'code'>) {
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
    // Only error answers count here (a WeakMap lookup on the way out; successes pay nothing more).
    if (status >= 400) {
      const code = errorCodeOf(reply);
      if (code !== undefined) errors.inc({ route, code });
    }
    done();
  };
}
