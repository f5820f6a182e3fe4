import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Counter } from 'prom-client';
import type { TimingHistogram, Timer } from '../metrics/timing-histogram.ts';
import { errorCodeOf } from './error-handler.ts';

type RequestHistogram = TimingHistogram<'method' | 'route' | 'status'>;
export type OnResponse = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void;

/**
 * courier_http_request_seconds, observed once per request (and courier_http_errors_total per error
 * answer). Each route gets a hook of its own, bound when the route is added to its url, with its
 * histogram children by status (and method, for a route of several): a request does not ask for its
 * route (request.routeOptions builds a dozen-field object on every read) nor build a label key, and
 * each timer is a TimingHistogram's, whose observe hashes nothing. Only routes added after this is installed are
 * timed: install it first. Returns the hook for requests no route matched (`unmatched`): the app
 * calls it from its own last hook when `request.is404`.
 */
export function installRequestMetrics(app: FastifyInstance, histogram: RequestHistogram, errors: Counter<'route' | 'code'>): OnResponse {
  const observerFor = (route: string, routeMethod: string | undefined): OnResponse => {
    const childOf = routeTimers(histogram, route);
    return (request, reply, done) => {
      const status = reply.statusCode;
      childOf(routeMethod ?? request.method, status).observe(reply.elapsedTime / 1000);
      // Only error answers count here (a WeakMap lookup on the way out; successes pay nothing more).
      if (status >= 400) {
        const code = errorCodeOf(reply);
        if (code !== undefined) errors.inc({ route, code });
      }
      done();
    };
  };
  app.addHook('onRoute', (route: RouteOptions) => {
    const observe = observerFor(route.url ?? 'unmatched', typeof route.method === 'string' ? route.method : undefined);
    route.onResponse = [...asList(route.onResponse), observe] as RouteOptions['onResponse'];
  });
  return observerFor('unmatched', undefined);
}

function asList<T>(value: T | readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value as T];
}

/**
 * The histogram's children of one route, by method and status (a handful per route), each made
 * once: also for answers given before Fastify (held-order-reads.ts), under the same labels.
 */
export function routeTimers(histogram: RequestHistogram, route: string): (method: string, status: number) => Timer {
  const byMethod = new Map<string, Map<number, Timer>>();
  return (method, status) => {
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (!child) byStatus.set(status, (child = histogram.timer({ method, route, status: String(status) })));
    return child;
  };
}
