import { Counter, Histogram, type Registry } from 'prom-client';

/** The maintenance jobs (cache warm-up, compensation, reconciliation), in the process that runs them: the worker. */
export function createMaintenanceMetrics(registry: Registry) {
  const registers = [registry];
  return {
    warmupItems: new Counter({
      name: 'courier_warmup_items_total',
      help: 'Items the cache warm-up loaded into Redis, by kind (order, merchant, rider)',
      labelNames: ['kind'] as const,
      registers,
    }),
    warmupSeconds: new Histogram({
      name: 'courier_warmup_seconds',
      help: 'Duration of one cache warm-up run, by reason (start, cron, cli)',
      labelNames: ['reason'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    compensationOrders: new Counter({
      name: 'courier_compensation_orders_total',
      help: 'Orders compensation found due, re-drove and escalated, by failure state and outcome (found, redriven, escalated, skipped)',
      labelNames: ['status', 'outcome'] as const,
      registers,
    }),
    reconcileItems: new Counter({
      name: 'courier_reconcile_items_total',
      help: 'What the reconciler put back, by kind (created, priced, notification) and action (enqueued, failed, dispatch, retried, given_up)',
      labelNames: ['kind', 'action'] as const,
      registers,
    }),
    maintenanceSeconds: new Histogram({
      name: 'courier_maintenance_run_seconds',
      help: 'Duration of one compensation or reconciliation run',
      labelNames: ['job'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
  };
}

export type MaintenanceMetrics = ReturnType<typeof createMaintenanceMetrics>;
