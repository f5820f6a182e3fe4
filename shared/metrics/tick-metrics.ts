import { Counter, type Registry } from 'prom-client';

const JOBS = ['warm-up', 'compensate', 'reconcile'] as const;
const OUTCOMES = ['enqueued', 'skipped', 'given_up'] as const;

/**
 * The scheduler's ticks, by job and outcome: enqueued (a no-op when another scheduler did first),
 * skipped (its switch is off), given_up (Redis away for every try). Every pair starts at 0.
 */
export function createTickMetrics(registry: Registry) {
  const ticks = new Counter({
    name: 'courier_scheduler_ticks_total',
    help: 'Scheduler ticks by job (warm-up, compensate, reconcile) and outcome (enqueued, skipped, given_up)',
    labelNames: ['job', 'outcome'] as const,
    registers: [registry],
  });
  for (const job of JOBS) for (const outcome of OUTCOMES) ticks.inc({ job, outcome }, 0);
  return { ticks };
}

export type TickMetrics = ReturnType<typeof createTickMetrics>;
export type TickOutcome = (typeof OUTCOMES)[number];
