import { Counter, Gauge, type Registry } from 'prom-client';

export type BreakerStateName = 'closed' | 'half_open' | 'open';
const STATES: readonly BreakerStateName[] = ['closed', 'half_open', 'open'];

/**
 * Circuit breakers (the notifier's provider breaker): the state each is in, read at scrape time,
 * one series per state with 1 for the current one (the usual shape of an enum in Prometheus), and
 * the transitions into each state (from 0: a breaker that never opened says so).
 */
export function createBreakerMetrics(registry: Registry) {
  const registers = [registry];
  const breakers = new Map<string, () => BreakerStateName>();
  const transitions = new Counter({
    name: 'courier_breaker_transitions_total',
    help: 'Times each circuit breaker moved into a state (open, half_open, closed)',
    labelNames: ['breaker', 'state'] as const,
    registers,
  });
  return {
    /** Reads this breaker's state at each scrape; call the returned function at each transition. */
    trackBreaker(breaker: string, state: () => BreakerStateName): (to: BreakerStateName) => void {
      breakers.set(breaker, state);
      for (const to of STATES) transitions.inc({ breaker, state: to }, 0);
      return (to) => transitions.inc({ breaker, state: to });
    },
    breakerState: new Gauge({
      name: 'courier_breaker_state',
      help: 'Each circuit breaker by state: 1 for the state it is in now (closed: calls go through; half_open: a trial call; open: failing fast), 0 for the others',
      labelNames: ['breaker', 'state'] as const,
      registers,
      collect() {
        for (const [breaker, state] of breakers) {
          const now = state();
          for (const candidate of STATES) this.set({ breaker, state: candidate }, candidate === now ? 1 : 0);
        }
      },
    }),
    breakerTransitions: transitions,
  };
}

export type BreakerMetrics = ReturnType<typeof createBreakerMetrics>;
