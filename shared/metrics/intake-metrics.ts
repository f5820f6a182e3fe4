import { Counter, Histogram, type Registry } from 'prom-client';
import { BATCH_SIZE_BUCKETS } from './registry.ts';

/** The web's intake: what it answered each order, and its micro-batches (shared/orders/order-intake.ts). */
export function createIntakeMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    intakeOrders: new Counter({
      name: 'courier_intake_orders_total',
      help: 'Orders answered by the intake, by outcome (created, replayed, rejected, unavailable, shed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    intakeBatchSize: new Histogram({
      name: 'courier_intake_batch_size',
      help: 'Orders committed per multi-row INSERT',
      buckets: BATCH_SIZE_BUCKETS.slice(0, -1),
      registers,
    }),
    intakeBatchSeconds: new Histogram({
      name: 'courier_intake_batch_seconds',
      help: 'Time to commit one intake batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    enqueueFailures: new Counter({
      name: 'courier_enqueue_failures_total',
      help: 'Orders committed but not enqueued (Redis away); the reconciler re-enqueues them from MySQL',
      registers,
    }),
  };
  return metrics;
}

export type IntakeMetrics = ReturnType<typeof createIntakeMetrics>;
