/**
 * The one map of job names to payloads. Producers and workers both type against it, and
 * both validate against it at run time (a queue is a public interface).
 */
export interface JobPayloads {
  /** Take a CREATED order through pricing. jobId `order-<id>` makes a repeat a no-op. */
  'order.price': { orderId: string };
}

export type JobName = keyof JobPayloads;

/**
 * BullMQ refuses custom job ids with a single ':' (it reserves them for its own repeat keys),
 * so the architecture's `order:<id>` is spelled `order-<id>`.
 */
export function orderJobId(orderId: string): string {
  return `order-${orderId}`;
}
