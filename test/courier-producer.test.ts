import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidJobPayloadError } from '../shared/errors/index.ts';
import { CourierProducer } from '../shared/queues/courier-producer.ts';
import { enqueueDispatchRuns, enqueueNewOrders } from '../shared/queues/order-producer.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';

const prefix = uniqueQueuePrefix();
let producer: CourierProducer;
let orders: Queue;
let dispatch: Queue;
let notifications: Queue;

beforeAll(() => {
  producer = new CourierProducer({ redisUrl: TEST_REDIS_URL, queuePrefix: prefix });
  orders = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix });
  dispatch = new Queue('dispatch', { connection: { url: TEST_REDIS_URL }, prefix });
  notifications = new Queue('notifications', { connection: { url: TEST_REDIS_URL }, prefix });
});

afterAll(async () => {
  await producer?.close();
  await orders?.close();
  await dispatch?.close();
  await notifications?.close();
  await deleteKeysWithPrefix(prefix);
});

describe('CourierProducer', () => {
  it('routes each job to its queue with the id that makes a repeat a no-op', async () => {
    expect(await producer.add('order.price', { orderId: '123456' })).toBe('order-123456');
    expect(await producer.add('order.price', { orderId: '123456' })).toBe('order-123456');
    expect(await producer.add('notify.send', { orderId: '123456', kind: 'customer.cancelled' })).toBe('notify-123456-customer-cancelled');
    expect(await producer.add('dispatch.zone', { zoneId: 'zone-a' })).toMatch(/^dispatch-zone-a-\d+$/);
    // First come, first served: no job carries a priority (which would cost every add).
    expect(await orders.getJobCounts('wait', 'prioritized')).toEqual({ wait: 1, prioritized: 0 });
    expect((await dispatch.getJobs(['wait'])).map((job) => job.data)).toEqual([{ zoneId: 'zone-a' }]);
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

  it('the queue-level producers refuse the wrong queue before adding anything', async () => {
    const before = [await orders.getJobCountByTypes('wait', 'delayed'), await dispatch.getJobCountByTypes('wait', 'delayed')];
    await expect(enqueueDispatchRuns(orders, ['zone-a'], 1000)).rejects.toThrow('dispatch runs go on the dispatch queue, not "orders"');
    await expect(enqueueNewOrders(dispatch, ['1234'], 1000)).rejects.toThrow('price jobs go on the orders queue, not "dispatch"');
    expect([await orders.getJobCountByTypes('wait', 'delayed'), await dispatch.getJobCountByTypes('wait', 'delayed')]).toEqual(before);
  });
});

describe('a backlog of price jobs', () => {
  it('does not hold up a dispatch run: dispatch runs have a queue and a worker of their own', async () => {
    const backlogPrefix = uniqueQueuePrefix();
    const connection = { url: TEST_REDIS_URL };
    const ordersQueue = new Queue('orders', { connection, prefix: backlogPrefix });
    const dispatchQueue = new Queue('dispatch', { connection, prefix: backlogPrefix });
    const ran: string[] = [];
    try {
      await enqueueNewOrders(ordersQueue, Array.from({ length: 20 }, (_, i) => String(1000 + i)), 2000);
      await enqueueDispatchRuns(dispatchQueue, ['zone-a'], 2000);
      const worker = new Worker('dispatch', async (job) => void ran.push(`${job.name} ${job.data.zoneId}`), { connection, prefix: backlogPrefix, concurrency: 1 });
      await vi.waitFor(() => expect(ran).toEqual(['dispatch.zone zone-a']), { timeout: 10_000, interval: 20 });
      await worker.close();
      // Not one price job was taken to get there.
      expect(await ordersQueue.getJobCounts('wait', 'active', 'completed')).toEqual({ wait: 20, active: 0, completed: 0 });
    } finally {
      await Promise.all([ordersQueue.obliterate({ force: true }), dispatchQueue.obliterate({ force: true })]);
      await Promise.all([ordersQueue.close(), dispatchQueue.close()]);
    }
  });
});
