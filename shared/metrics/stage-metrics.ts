import { Counter, Histogram, type Registry } from 'prom-client';
import { BATCH_SIZE_BUCKETS, SECONDS_BUCKETS } from './registry.ts';

/** The pipeline's batched stages: price and dispatch (the worker), notify (the notifier). */
export type Stage = 'price' | 'dispatch' | 'notify';

/**
 * What each stage did per batch: its size and what became of its items. Observed once per batch
 * (a handful of in-memory updates), never per order.
 */
export function createStageMetrics(registry: Registry) {
  const registers = [registry];
  return {
    stageBatchSize: new Histogram({
      name: 'courier_stage_batch_size',
      help: 'Items per batch a stage handled: orders per price batch and per dispatch batch, notifications per notify batch',
      labelNames: ['stage'] as const,
      buckets: BATCH_SIZE_BUCKETS,
      registers,
    }),
    stageItems: new Counter({
      name: 'courier_stage_items_total',
      help:
        'What became of the items of each stage, by stage and outcome (price: priced, moved_on, failed, missing; ' +
        'dispatch: dispatched, failed, deferred; notify: sent, already_sent, refused, failed, unavailable)',
      labelNames: ['stage', 'outcome'] as const,
      registers,
    }),
  };
}

export type StageMetrics = ReturnType<typeof createStageMetrics>;

/** Counts a batch's outcomes, leaving out the zeros (a series appears with its first item). */
export function countOutcomes(metrics: Pick<StageMetrics, 'stageItems'>, stage: Stage, outcomes: Readonly<Record<string, number>>): void {
  for (const [outcome, count] of Object.entries(outcomes)) if (count > 0) metrics.stageItems.inc({ stage, outcome }, count);
}

/**
 * How long orders take between the steps the client waits on, in the worker: from the intake's
 * INSERT (the 202 follows its commit) to PRICED, and from PRICED to DISPATCHED. Each is the age
 * MySQL gave the row when the batch read it (its own clock at both ends: no skew between machines)
 * plus the time since that read; one in-memory observe per order moved, no I/O.
 */
export function createOrderLatencyMetrics(registry: Registry) {
  const registers = [registry];
  return {
    createdToPriced: new Histogram({
      name: 'courier_order_created_to_priced_seconds',
      help: 'Seconds from an order accepted (its row inserted, answered 202) to its commit as PRICED',
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    pricedToDispatched: new Histogram({
      name: 'courier_order_priced_to_dispatched_seconds',
      help: 'Seconds from an order last PRICED to its commit as DISPATCHED (a rider assigned)',
      buckets: SECONDS_BUCKETS,
      registers,
    }),
  };
}

export type OrderLatencyMetrics = ReturnType<typeof createOrderLatencyMetrics>;
