/**
 * Courier's queues. The prefix (a Redis Cluster hash tag, e.g. {courier}) keeps a queue's keys in
 * one slot; the queues themselves spread over the cluster's masters.
 */
export const QUEUE_NAMES = {
  /** Price batches. */
  orders: 'orders',
  /** Dispatch runs, apart from price batches so that a backlog of orders to price never delays matching the priced ones. */
  dispatch: 'dispatch',
  /** Notification batches, consumed only by the notifier, so a provider outage never slows the orders. */
  notifications: 'notifications',
  /** Cache warm-up, compensation, reconciliation: one at a time per worker process. */
  maintenance: 'maintenance',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
