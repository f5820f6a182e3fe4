import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process (never prom-client's global one, so tests can build many apps side by
 * side), holding the metrics every part of Courier reports into.
 */
export function createMetrics(opts: { defaultMetrics?: boolean; processName?: string } = {}) {
  const registry = new Registry();
  if (opts.processName) registry.setDefaultLabels({ process: opts.processName });
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    intakeOrders: new Counter({
      name: 'courier_intake_orders_total',
      help: 'Orders answered by the intake, by outcome (created, replayed, rejected, unavailable, shed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    intakeBatchSize: new Histogram({
      name: 'courier_intake_batch_size',
      help: 'Orders committed per multi-row INSERT',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    }),
    intakeBatchSeconds: new Histogram({
      name: 'courier_intake_batch_seconds',
      help: 'Time to commit one intake batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    enqueueFailures: new Counter({
      name: 'courier_enqueue_failures_total',
      help: 'Orders committed but not enqueued (Redis away); the reconciler re-enqueues them from MySQL',
      registers: [registry],
    }),
    orderReads: new Counter({
      name: 'courier_order_reads_total',
      help: 'Order reads by where they were answered from (l1, l2, mysql)',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    httpRequestSeconds: new Histogram({
      name: 'courier_http_request_seconds',
      help: 'HTTP request duration by route and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    warmupItems: new Counter({
      name: 'courier_warmup_items_total',
      help: 'Items the cache warm-up loaded into Redis, by kind (order, merchant, rider)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    warmupSeconds: new Histogram({
      name: 'courier_warmup_seconds',
      help: 'Duration of one cache warm-up run, by reason (start, cron, cli)',
      labelNames: ['reason'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    }),
    compensationOrders: new Counter({
      name: 'courier_compensation_orders_total',
      help: 'Orders compensation found due, re-drove and escalated, by failure state and outcome (found, redriven, escalated, skipped)',
      labelNames: ['status', 'outcome'] as const,
      registers: [registry],
    }),
    reconcileItems: new Counter({
      name: 'courier_reconcile_items_total',
      help: 'What the reconciler put back, by kind (created, priced, notification) and action (enqueued, failed, dispatch, retried, given_up)',
      labelNames: ['kind', 'action'] as const,
      registers: [registry],
    }),
    maintenanceSeconds: new Histogram({
      name: 'courier_maintenance_run_seconds',
      help: 'Duration of one compensation or reconciliation run',
      labelNames: ['job'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    switchOn: new Gauge({
      name: 'courier_switch_on',
      help: 'Each degradation switch as this process last read it: 1 on (the feature runs), 0 off (it is shed)',
      labelNames: ['switch'] as const,
      registers: [registry],
    }),
    switchesReadAt: new Gauge({
      name: 'courier_switches_last_read_timestamp_seconds',
      help: 'When this process last read the switches from Redis (while Redis is away it keeps the values it read then)',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
