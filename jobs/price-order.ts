import { UnrecoverableError } from 'bullmq';
import type { PriceOutcome } from '../shared/orders/price-batch.ts';
import type { JobPayloads } from '../shared/queues/payloads.ts';

export interface PriceOrderDeps {
  /**
   * Prices one order: CREATED -> PRICED with fee and ETA (shared/orders/price-batch.ts). The
   * worker batches the calls of the jobs in flight into one read, one thread call and one commit.
   */
  readonly priceOrder: (orderId: string) => Promise<PriceOutcome>;
}

export type PriceOrderOutcome = Exclude<PriceOutcome, { outcome: 'not-found' }>;

/**
 * CREATED -> PRICED. Run twice (a duplicate job, a retry after a crash), the second run finds the
 * order no longer CREATED and changes nothing. An order that does not exist fails the job for good.
 */
export async function priceOrderJob(payload: JobPayloads['order.price'], deps: PriceOrderDeps): Promise<PriceOrderOutcome> {
  const result = await deps.priceOrder(payload.orderId);
  if (result.outcome === 'not-found') throw new UnrecoverableError(`order ${payload.orderId} does not exist`);
  return result;
}
