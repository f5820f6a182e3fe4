/** Queue names. The prefix (a Redis Cluster hash tag, e.g. {courier}) keeps a queue's keys in one slot. */
export const QUEUE_NAMES = {
  orders: 'orders',
  notifications: 'notifications',
  maintenance: 'maintenance',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
