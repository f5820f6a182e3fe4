import { Counter, Gauge, type Registry } from 'prom-client';

/** What the edge's gauges read when Prometheus scrapes (set once the parts exist). */
export interface EdgeSources {
  readonly inFlight: () => number;
  readonly inFlightMax: number;
  readonly intakePending: () => number;
  readonly intakePendingMax: number;
}

/**
 * The web process's edge: its bounds and how full they are, what it shed, what it rate-limited,
 * and the rate-limit checks let through because Redis failed (fail open). Registered only by the
 * web process (shared/metrics/process-metrics.ts), on its registry.
 */
export function createEdgeMetrics(registry: Registry) {
  let sources: EdgeSources = { inFlight: () => 0, inFlightMax: 0, intakePending: () => 0, intakePendingMax: 0 };
  const registers = [registry];
  const shed = new Counter({
    name: 'courier_http_shed_requests_total',
    help: 'Requests answered 503 OVERLOADED at once, by the bound they met (in_flight, intake_pending)',
    labelNames: ['bound'] as const,
    registers,
  });
  // From 0: a bound never met says so, rather than having no series at all.
  for (const bound of ['in_flight', 'intake_pending']) shed.inc({ bound }, 0);
  return {
    /** Tells the gauges where to read. */
    track(next: EdgeSources): void {
      sources = next;
    },
    inFlight: new Gauge({
      name: 'courier_http_requests_in_flight',
      help: 'API requests this web process is serving now',
      registers,
      collect() {
        this.set(sources.inFlight());
      },
    }),
    inFlightMax: new Gauge({
      name: 'courier_http_requests_in_flight_max',
      help: 'API requests this web process serves at once at most (HTTP_MAX_IN_FLIGHT); past it, 503 OVERLOADED',
      registers,
      collect() {
        this.set(sources.inFlightMax);
      },
    }),
    intakePending: new Gauge({
      name: 'courier_intake_pending_orders',
      help: 'Orders waiting for a place in an intake batch in this web process',
      registers,
      collect() {
        this.set(sources.intakePending());
      },
    }),
    intakePendingMax: new Gauge({
      name: 'courier_intake_pending_orders_max',
      help: 'Orders that may wait for an intake batch at most (INTAKE_MAX_PENDING); past it, 503 OVERLOADED',
      registers,
      collect() {
        this.set(sources.intakePendingMax);
      },
    }),
    shed,
    rateLimited: new Counter({
      name: 'courier_http_rate_limited_requests_total',
      help: 'Requests answered 429 RATE_LIMITED because their API client was over its rate',
      registers,
    }),
    rateLimitFailOpen: new Counter({
      name: 'courier_rate_limit_fail_open_total',
      help: 'Requests let through unchecked because the rate-limit check in Redis failed or took longer than RATE_LIMIT_TIMEOUT_MS',
      registers,
    }),
  };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
