import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DispatchBooking } from '../jobs/book-dispatch.ts';
import { CourierProducer } from '../jobs/courier-producer.ts';
import { JobProducer } from '../jobs/producer.ts';
import { Redis } from 'ioredis';
import { JOB_TYPES, QUEUES } from '../jobs/job-types.ts';
import { PAYLOAD_SCHEMAS } from '../jobs/payloads.ts';
import { InvalidJobPayloadError } from '../shared/errors/index.ts';
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

describe('the table of job types', () => {
  it('declares every job type once, with a queue, a schema, an id rule and a handler; its queues are the four of Courier', () => {
    expect(Object.keys(JOB_TYPES).sort()).toEqual(Object.keys(PAYLOAD_SCHEMAS).sort());
    for (const type of Object.values(JOB_TYPES)) {
      expect(typeof type.jobId).toBe('function');
      expect(typeof type.run).toBe('function');
    }
    expect([...QUEUES].sort()).toEqual(['dispatch', 'maintenance', 'notifications', 'orders']);
  });
});

describe('CourierProducer', () => {
  it('routes each job to its queue with the id its content gives, so a repeat is a no-op', async () => {
    expect(await producer.add('orders.price', { orderIds: ['123456', '123457'], attempt: 0 })).toBe('price-123456-2-a0');
    expect(await producer.add('orders.price', { orderIds: ['123456', '123457'], attempt: 0 })).toBe('price-123456-2-a0');
    const notify = await producer.add('notify.batch', { notifications: [{ orderId: '123456', kind: 'customer.cancelled' }] });
    expect(notify).toMatch(/^notify-123456-1-[0-9a-f]{10}$/);
    expect(await producer.add('dispatch.zone', { zoneId: 'zone-a', window: 1_000 })).toBe('dispatch-zone-a-1000');
    // First come, first served: no job carries a priority (which would cost every add).
    expect(await orders.getJobCounts('wait', 'prioritized')).toEqual({ wait: 1, prioritized: 0 });
    expect((await dispatch.getJobs(['wait'])).map((job) => job.data)).toEqual([{ zoneId: 'zone-a', window: 1_000 }]);
    expect((await orders.getJob('price-123456-2-a0'))?.data).toEqual({ orderIds: ['123456', '123457'], attempt: 0 });
    expect((await notifications.getJob(notify))?.opts.attempts).toBe(10);
  });

  it('refuses a malformed payload or an unknown job before anything is added', async () => {
    const before = await orders.getJobCounts('wait', 'prioritized');
    await expect(producer.add('orders.price', { orderIds: [42], attempt: 0 } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('orders.price', { orderIds: ['1'], attempt: 0, extra: true } as never)).rejects.toThrow(/malformed orders\.price payload/);
    await expect(producer.add('orders.price', { orderIds: [], attempt: 0 })).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('notify.batch', { notifications: [{ orderId: '1', kind: 'customer.birthday' }] } as never)).rejects.toThrow(InvalidJobPayloadError);
    await expect(producer.add('order.refund' as never, {} as never)).rejects.toThrow(/unknown job name "order.refund"/);
    expect(await orders.getJobCounts('wait', 'prioritized')).toEqual(before);
  });
});

describe('a backlog of price batches', () => {
  it('does not hold up a dispatch run: dispatch runs have a queue and a worker of their own', async () => {
    const backlogPrefix = uniqueQueuePrefix();
    const backlog = new CourierProducer({ redisUrl: TEST_REDIS_URL, queuePrefix: backlogPrefix });
    const connection = { url: TEST_REDIS_URL };
    const ordersQueue = new Queue('orders', { connection, prefix: backlogPrefix });
    const dispatchQueue = new Queue('dispatch', { connection, prefix: backlogPrefix });
    const ran: string[] = [];
    let worker: Worker | undefined;
    try {
      for (let i = 0; i < 20; i++) await backlog.add('orders.price', { orderIds: [String(1000 + i)], attempt: 0 });
      await backlog.add('dispatch.zone', { zoneId: 'zone-a', window: 0 });
      worker = new Worker('dispatch', async (job) => void ran.push(`${job.name} ${job.data.zoneId}`), { connection, prefix: backlogPrefix, concurrency: 1 });
      await vi.waitFor(() => expect(ran).toEqual(['dispatch.zone zone-a']), { timeout: 10_000, interval: 20 });
      // Not one price batch was taken to get there.
      expect(await ordersQueue.getJobCounts('wait', 'active', 'completed')).toEqual({ wait: 20, active: 0, completed: 0 });
    } finally {
      await worker?.close();
      await backlog.close();
      await Promise.all([ordersQueue.obliterate({ force: true }), dispatchQueue.obliterate({ force: true })]);
      await Promise.all([ordersQueue.close(), dispatchQueue.close()]);
    }
  });
});

describe('booking dispatch runs', () => {
  it('books a zone once per window from a process, whatever the number of price batches asking; at once, every time', async () => {
    const bookingPrefix = uniqueQueuePrefix();
    const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    const producer = new JobProducer(redis, { prefix: bookingPrefix, timeoutMs: 2000 });
    // An hour's window: the calls below all fall in one.
    const booking = new DispatchBooking(producer, 3_600_000);
    const adds = async () => Number((await redis.get(`${bookingPrefix}:dispatch:id`)) ?? 0); // every add increments it, no-op or not
    try {
      for (let i = 0; i < 5; i++) await booking.next(['zone-a', 'zone-b']);
      await booking.next(['zone-c', 'zone-a']);
      expect(await adds()).toBe(3);
      const queue = producer.queue('dispatch');
      expect((await queue.getJobs(['delayed'])).map((job) => job.data.zoneId).sort()).toEqual(['zone-a', 'zone-b', 'zone-c']);
      await booking.now(['zone-a']);
      await booking.now(['zone-a']);
      expect(await adds()).toBe(5);
    } finally {
      await producer.close();
      redis.disconnect();
      await deleteKeysWithPrefix(bookingPrefix);
    }
  });
});
