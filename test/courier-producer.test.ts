import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidJobPayloadError } from '../shared/errors/index.ts';
import { CourierProducer } from '../shared/queues/courier-producer.ts';
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
    expect(await orders.getJobCounts('wait')).toEqual({ wait: 1 });
    expect((await orders.getJob('order-123456'))?.data).toEqual({ orderId: '123456' });
    const notification = await notifications.getJob('notify-123456-customer-cancelled');
    expect(notification?.opts.attempts).toBe(10);
  });

  it('refuses a malformed payload or an unknown job before anything is added', async () => {
    const before = await orders.getJobCounts('wait');
    await expect(producer.add('order.price', { orderId: 42 } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('order.price', { orderId: '1', extra: true } as never)).rejects.toThrow(/malformed order\.price payload/);
    await expect(producer.add('notify.send', { orderId: '1', kind: 'customer.birthday' } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('order.refund' as never, {} as never)).rejects.toThrow(/unknown job name "order.refund"/);
    expect(await orders.getJobCounts('wait')).toEqual(before);
  });
});
