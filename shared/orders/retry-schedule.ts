import type { Config } from '../config.ts';
import type { FailedStatus } from './state-machine.ts';

export interface RetryPolicy {
  /** Wait before the first re-drive, in ms; each further one waits twice as long. */
  readonly baseMs: number;
  /** No wait is longer than this, in ms. */
  readonly maxMs: number;
  /** Re-drives a failure state gets before the order is escalated (CANCELLED with the reason). */
  readonly budget: Readonly<Record<FailedStatus, number>>;
}

export function retryPolicyFrom(
  config: Pick<Config, 'retryBaseMs' | 'retryMaxMs' | 'pricingAttemptBudget' | 'dispatchAttemptBudget'>,
): RetryPolicy {
  return {
    baseMs: config.retryBaseMs,
    maxMs: config.retryMaxMs,
    budget: { PRICING_FAILED: config.pricingAttemptBudget, DISPATCH_FAILED: config.dispatchAttemptBudget },
  };
}

/**
 * When an order that just failed (after `attempts` re-drives) is due for its next one: exponential
 * backoff with "equal jitter" (half the wait fixed, half random), so orders that failed together
 * (a rider shortage in one zone) do not all come back in the same second.
 */
export function nextAttemptAt(policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, attempts: number, now = Date.now(), random = Math.random): Date {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempts, 30));
  return new Date(now + Math.round(ceiling / 2 + random() * (ceiling / 2)));
}

/** Whether an order failed in `status` after `attempts` re-drives has used up its budget. */
export function budgetSpent(policy: Pick<RetryPolicy, 'budget'>, status: FailedStatus, attempts: number): boolean {
  return attempts >= policy.budget[status];
}
