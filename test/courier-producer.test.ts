import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidJobPayloadError } from '../shared/errors/index.ts';
import { CourierProducer } from '../shared/queues/courier-producer.ts';
import { enqueueDispatchRuns, enqueueNewOrders } from '../shared/queues/order-producer.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';

const prefix = uniqueQueuePrefix();
let producer: CourierProducer;
let orders: Queue;
let notifications: Queue;

beforeAll(() => {
  producer = new CourierProducer({ redisUrl: TEST_REDIS_URL, queuePrefix: prefix });
  orders = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix });
  notifications = new Queue('notifications', { connection: { url: TEST_REDIS_URL }, prefix });
});

afterAll(async () => {
  await producer?.close();
  await orders?.close();
  await notifications?.close();
  await deleteKeysWithPrefix(prefix);
});

describe('CourierProducer', () => {
  it('routes each job to its queue with the id that makes a repeat a no-op', async () => {
    expect(await producer.add('order.price', { orderId: '123456' })).toBe('order-123456');
    expect(await producer.add('order.price', { orderId: '123456' })).toBe('order-123456');
    expect(await producer.add('notify.send', { orderId: '123456', kind: 'customer.cancelled' })).toBe('notify-123456-customer-cancelled');
    // Price jobs are prioritized (after dispatch runs, which carry no priority).
    expect(await orders.getJobCounts('wait', 'prioritized')).toEqual({ wait: 0, prioritized: 1 });
    expect((await orders.getJob('order-123456'))?.data).toEqual({ orderId: '123456' });
    const notification = await notifications.getJob('notify-123456-customer-cancelled');
    expect(notification?.opts.attempts).toBe(10);
  });

  it('refuses a malformed payload or an unknown job before anything is added', async () => {
    const before = await orders.getJobCounts('wait', 'prioritized');
    await expect(producer.add('order.price', { orderId: 42 } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('order.price', { orderId: '1', extra: true } as never)).rejects.toThrow(/malformed order\.price payload/);
    await expect(producer.add('notify.send', { orderId: '1', kind: 'customer.birthday' } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('order.refund' as never, {} as never)).rejects.toThrow(/unknown job name "order.refund"/);
    expect(await orders.getJobCounts('wait', 'prioritized')).toEqual(before);
  });
});

describe('the orders queue under a backlog', () => {
  it('runs a dispatch run before the price jobs queued ahead of it (orders already priced finish first)', async () => {
    const backlogPrefix = uniqueQueuePrefix();
    const queue = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: backlogPrefix });
    const ran: string[] = [];
    try {
      await enqueueNewOrders(queue, Array.from({ length: 20 }, (_, i) => String(1000 + i)), 2000);
      await enqueueDispatchRuns(queue, ['zone-a'], 2000);
      const worker = new Worker('orders', async (job) => void ran.push(job.name), {
        connection: { url: TEST_REDIS_URL },
        prefix: backlogPrefix,
        concurrency: 1,
      });
      await vi.waitFor(() => expect(ran).toHaveLength(21), { timeout: 10_000, interval: 20 });
      await worker.close();
      expect(ran[0]).toBe('dispatch.zone');
      expect(ran.slice(1).every((name) => name === 'order.price')).toBe(true);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
