/** Queue names. The prefix (a Redis Cluster hash tag, e.g. {courier}) keeps a queue's keys in one slot. */
export const QUEUE_NAMES = {
  orders: 'orders',
  /** Dispatch runs, apart from price jobs so that a backlog of orders to price never delays matching the priced ones. */
  dispatch: 'dispatch',
  notifications: 'notifications',
  maintenance: 'maintenance',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/** Refuses to put jobs on the wrong queue (a worker of that queue would fail them as unknown). */
export function assertQueue(queue: { readonly name: string }, expected: QueueName, what: string): void {
  if (queue.name !== expected) throw new TypeError(`${what} go on the ${expected} queue, not "${queue.name}"`);
}
