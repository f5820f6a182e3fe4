import { Counter, type Registry } from 'prom-client';
import { TimingHistogram } from './timing-histogram.ts';

/** The web's requests: how long each took, and the error codes it answered (shared/http/build-app.ts). */
export function createHttpMetrics(registry: Registry) {
  const registers = [registry];
  return {
    httpRequestSeconds: new TimingHistogram({
      name: 'courier_http_request_seconds',
      help: 'HTTP request duration by route and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    httpErrors: new Counter({
      name: 'courier_http_errors_total',
      help: 'Error answers by route and machine-readable code (VALIDATION_FAILED, UNKNOWN_MERCHANT, RATE_LIMITED, OVERLOADED, ...)',
      labelNames: ['route', 'code'] as const,
      registers,
    }),
  };
}

export type HttpMetrics = ReturnType<typeof createHttpMetrics>;
