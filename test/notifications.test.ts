import type { AddressInfo } from 'node:net';
import type { Job, Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sendNotificationJob } from '../jobs/send-notification.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { ProviderUnavailableError } from '../shared/errors/index.ts';
import { IdGenerator } from '../shared/ids.ts';
import { composeNotification, loadNotificationContexts } from '../shared/notifications/compose-notification.ts';
import { BatchedNotificationLedger } from '../shared/notifications/ledger-steps.ts';
import {
  buildDevProvider,
  type DeliveredMessage,
  type DevProviderSettings,
  type DevProviderStats,
} from '../shared/notifications/dev-provider-app.ts';
import { ProviderClient, notificationIdempotencyKey, type BreakerState } from '../shared/notifications/provider-client.ts';
import { notificationBackoff } from '../shared/notifications/retry-policy.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { enqueueNotificationBatch, enqueueNotifications } from '../shared/queues/notification-producer.ts';
import { notificationJobId, type NotificationKind } from '../shared/queues/payloads.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createProducerRedis, type Redis } from '../shared/redis.ts';
import { startNotifier, type Notifier } from '../workers/notifier-pipeline.ts';
import { runTsx } from './support/child-process.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

/** Small bounds so timeouts and the breaker's reset happen within a test. */
const TIMEOUT_MS = 300;
const RESET_MS = 500;
const PHONE = '+8613800000000';
const silent = pino({ level: 'silent' });

let database: TestDatabase;
let provider: FastifyInstance;
let config: Config;
let redis: Redis;
let queue: Queue;
let notifier: Notifier;
const queuePrefix = uniqueQueuePrefix();
const ids = new IdGenerator(7);

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db('merchants').insert(TEST_MERCHANT);
  provider = buildDevProvider();
  await provider.listen({ port: 0, host: '127.0.0.1' });
  const { port } = provider.server.address() as AddressInfo;
  config = loadConfig(
    { MYSQL_URL: database.mysqlUrl, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent' },
    {
      notifyProviderUrl: `http://127.0.0.1:${port}`,
      notifyTimeoutMs: TIMEOUT_MS,
      notifyBreakerResetMs: RESET_MS,
      notifierConcurrency: 4,
      jobLockMs: 5000,
    },
  );
  redis = createProducerRedis(config);
  queue = createQueue(QUEUE_NAMES.notifications, { connection: redis, prefix: queuePrefix });
  notifier = await startNotifier(config, silent);
  await notifier.worker.waitUntilReady();
});

afterEach(async () => {
  await control({ delayMs: 0, failRate: 0, down: false });
});

afterAll(async () => {
  await notifier?.close();
  await queue?.close();
  redis?.disconnect();
  await provider?.close();
  await database?.drop();
  await deleteKeysWithPrefix(queuePrefix);
});

/** A dispatched order of its own for one test. */
async function newOrder(): Promise<string> {
  const id = ids.next(1);
  await database.db('orders').insert({
    id,
    client_id: '1',
    idempotency_key: `notify-test-${id}`,
    request_hash: 'a'.repeat(64),
    merchant_id: TEST_MERCHANT.id,
    zone_id: TEST_MERCHANT.zone_id,
    status: 'DISPATCHED',
    pickup_lat: TEST_MERCHANT.lat,
    pickup_lng: TEST_MERCHANT.lng,
    dropoff_lat: 31.2304,
    dropoff_lng: 121.4737,
    dropoff_address: '88 Century Ave',
    dropoff_phone: PHONE,
    items: JSON.stringify([{ sku: 'NOODLE-01', name: 'Beef noodles', qty: 2, priceCents: 1800 }]),
    fee_cents: 900,
    eta_seconds: 1500,
    rider_id: '7101',
  });
  return id;
}

async function control(settings: Partial<DevProviderSettings>): Promise<void> {
  const res = await provider.inject({ method: 'POST', url: '/control', payload: settings });
  expect(res.statusCode).toBe(200);
}

async function providerStats(): Promise<DevProviderStats> {
  return (await provider.inject({ method: 'GET', url: '/control' })).json().stats;
}

async function delivered(orderId: string): Promise<DeliveredMessage[]> {
  return (await provider.inject({ method: 'GET', url: `/v1/messages?orderId=${orderId}` })).json().messages;
}

async function ledger(orderId: string, kind: NotificationKind) {
  return database.db('notifications').where({ order_id: orderId, kind }).first();
}

async function waitForSent(orderId: string, kind: NotificationKind, timeout = 10_000) {
  await vi.waitFor(async () => expect((await ledger(orderId, kind))?.status).toBe('SENT'), { timeout, interval: 25 });
  return ledger(orderId, kind);
}

/** Resolves with the next outcome of the job with this id on the notifier's worker. */
function nextOutcome(jobId: string): Promise<{ result?: unknown; error?: Error; elapsedMs: number }> {
  const worker = notifier.worker;
  let startedAt = Date.now();
  return new Promise((resolve) => {
    const onActive = (job: Job) => {
      if (job.id === jobId) startedAt = Date.now();
    };
    const done = (outcome: { result?: unknown; error?: Error }) => {
      worker.off('active', onActive);
      worker.off('completed', onCompleted);
      worker.off('failed', onFailed);
      resolve({ ...outcome, elapsedMs: Date.now() - startedAt });
    };
    const onCompleted = (job: Job, result: unknown) => {
      if (job.id === jobId) done({ result });
    };
    const onFailed = (job: Job | undefined, error: Error) => {
      if (job?.id === jobId) done({ error });
    };
    worker.on('active', onActive);
    worker.on('completed', onCompleted);
    worker.on('failed', onFailed);
  });
}

describe('notifications', () => {
  it('are sent exactly once end to end: enqueue -> notifier -> provider -> ledger SENT', async () => {
    const orderId = await newOrder();
    await enqueueNotifications(queue, orderId, ['customer.dispatched', 'merchant.dispatched'], 1000);

    const customer = await waitForSent(orderId, 'customer.dispatched');
    const merchant = await waitForSent(orderId, 'merchant.dispatched');
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(2);
    const toCustomer = messages.find((m) => m.kind === 'customer.dispatched')!;
    const toMerchant = messages.find((m) => m.kind === 'merchant.dispatched')!;
    expect(toCustomer).toMatchObject({ to: PHONE, idempotencyKey: `${orderId}:customer.dispatched` });
    expect(toCustomer.text).toMatch(/Test Noodles: your order \d+ has a rider and is on its way, arriving in about 25 min/);
    expect(toMerchant).toMatchObject({ to: `merchant:${TEST_MERCHANT.id}`, idempotencyKey: `${orderId}:merchant.dispatched` });
    expect(toMerchant.text).toMatch(/rider 7101 is coming to pick it up/);
    expect(customer).toMatchObject({ attempts: 1, provider_message_id: toCustomer.id, last_error: null });
    expect(customer.sent_at).toBeInstanceOf(Date);
    expect(merchant).toMatchObject({ attempts: 1, provider_message_id: toMerchant.id });
  });

  it('a duplicated job has no second effect', async () => {
    const orderId = await newOrder();
    const kind = 'customer.dispatched';
    const jobId = notificationJobId(orderId, kind);

    // Enqueued twice while the first is waiting: one job.
    const firstRun = nextOutcome(jobId);
    await notifier.worker.pause();
    try {
      await enqueueNotifications(queue, orderId, [kind], 1000);
      await enqueueNotifications(queue, orderId, [kind, kind], 1000);
      const waiting = (await queue.getJobs(['wait'])).filter((job) => job.data.orderId === orderId);
      expect(waiting.map((job) => job.id)).toEqual([jobId]);
    } finally {
      notifier.worker.resume();
    }
    expect((await firstRun).result).toBe('sent');
    const sent = await ledger(orderId, kind);
    expect(sent.status).toBe('SENT');
    expect(await delivered(orderId)).toHaveLength(1);

    // Enqueued again after the job finished (and was removed): the job runs, finds SENT, sends nothing.
    const requestsBefore = (await providerStats()).requests;
    const outcome = nextOutcome(jobId);
    await enqueueNotifications(queue, orderId, [kind], 1000);
    expect((await outcome).result).toBe('already-sent');

    // Run directly, twice.
    const deps = { ledger: new BatchedNotificationLedger(database.db), provider: notifier.provider, logger: silent };
    expect(await sendNotificationJob({ orderId, kind }, deps)).toBe('already-sent');
    expect(await sendNotificationJob({ orderId, kind }, deps)).toBe('already-sent');

    expect((await providerStats()).requests).toBe(requestsBefore);
    expect(await delivered(orderId)).toHaveLength(1);
    expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', attempts: 1, provider_message_id: sent.provider_message_id });
    expect(await database.db('notifications').where({ order_id: orderId })).toHaveLength(1);
  });

  it('two runs of one notification at once send one message', async () => {
    const orderId = await newOrder();
    const kind = 'customer.cancelled';
    const deps = { ledger: new BatchedNotificationLedger(database.db), provider: notifier.provider, logger: silent };
    const outcomes = await Promise.all([sendNotificationJob({ orderId, kind }, deps), sendNotificationJob({ orderId, kind }, deps)]);
    expect(outcomes.sort()).toEqual(['already-sent', 'sent']);
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.text).toMatch(/your order \d+ has been cancelled/);
    expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', provider_message_id: messages[0]!.id });
  });

  it('the ledger steps of notifications sent at once share their round trips, and each is still sent once', async () => {
    const orderIds: string[] = [];
    for (let i = 0; i < 50; i++) orderIds.push(await newOrder());
    const kinds: NotificationKind[] = ['customer.dispatched', 'merchant.dispatched'];
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql);
    const deps = { ledger: new BatchedNotificationLedger(database.db, { maxSize: 100 }), provider: notifier.provider, logger: silent };
    const before = await providerStats();
    database.db.on('query', onQuery);
    let outcomes: string[];
    try {
      outcomes = await Promise.all(orderIds.flatMap((orderId) => kinds.map((kind) => sendNotificationJob({ orderId, kind }, deps))));
    } finally {
      database.db.off('query', onQuery);
    }
    expect(outcomes).toEqual(Array(100).fill('sent'));
    const after = await providerStats();
    expect(after.deliveries - before.deliveries).toBe(100);
    expect(after.duplicates).toBe(before.duplicates);
    const rows = await database.db('notifications').whereIn('order_id', orderIds);
    expect(rows).toHaveLength(100);
    expect(rows.every((row) => row.status === 'SENT' && row.attempts === 1 && row.provider_message_id)).toBe(true);
    // One at a time: 5 statements a notification (500). Together: the 100 begins, submitted at
    // once, are one batch (INSERT, two SELECTs, one UPDATE of the attempts); the SENT marks follow
    // the provider's answers in a few transactions.
    expect(statements.filter((sql) => /^insert into notifications/i.test(sql.replaceAll('`', '')))).toHaveLength(1);
    expect(statements.filter((sql) => /^update notifications set attempts/i.test(sql.replaceAll('`', '')))).toHaveLength(1);
    expect(statements.length).toBeLessThan(250);
  });

  it('a retry after a crash between the provider call and marking SENT notifies once', async () => {
    const orderId = await newOrder();
    const kind = 'customer.dispatched';
    // The run that crashed: it opened the ledger row, counted its attempt, and the provider accepted
    // the message; the process died before the row said SENT.
    await database.db('notifications').insert({ order_id: orderId, kind, status: 'PENDING', attempts: 1 });
    const context = (await loadNotificationContexts(database.db, [orderId])).get(orderId)!;
    const client = new ProviderClient(config);
    let first;
    try {
      first = await client.send({ orderId, kind, ...composeNotification(kind, context) });
    } finally {
      await client.close();
    }
    expect(first.replayed).toBe(false);
    const before = await providerStats();

    // The retry calls the provider again with the same key; the provider drops the repeat.
    const outcome = await sendNotificationJob({ orderId, kind }, { ledger: new BatchedNotificationLedger(database.db), provider: notifier.provider, logger: silent });
    expect(outcome).toBe('sent');

    const after = await providerStats();
    expect(after.deliveries).toBe(before.deliveries);
    expect(after.duplicates).toBe(before.duplicates + 1);
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.idempotencyKey).toBe(notificationIdempotencyKey(orderId, kind));
    expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', attempts: 2, provider_message_id: first.messageId });
  });

  it('a provider slower than the timeout costs the bound, and the notification is sent once when it recovers', async () => {
    // One call: it fails at the timeout, not when the provider finally answers.
    await control({ delayMs: 1500 });
    const client = new ProviderClient(config);
    try {
      const startedAt = Date.now();
      await expect(client.send({ orderId: '1', kind: 'customer.dispatched', to: PHONE, text: 'probe' })).rejects.toThrow(
        `did not answer within ${TIMEOUT_MS} ms`,
      );
      const elapsed = Date.now() - startedAt;
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 400);
    } finally {
      await client.close();
    }

    // Through the notifier: the first attempt times out and is retried later.
    const orderId = await newOrder();
    const kind = 'customer.dispatched';
    const duplicatesBefore = (await providerStats()).duplicates;
    const firstAttempt = nextOutcome(notificationJobId(orderId, kind));
    await enqueueNotifications(queue, orderId, [kind], 1000);
    const failed = await firstAttempt;
    expect(failed.error?.message).toMatch(`did not answer within ${TIMEOUT_MS} ms`);
    expect(failed.elapsedMs).toBeLessThan(TIMEOUT_MS + 700);
    expect(await ledger(orderId, kind)).toMatchObject({ status: 'PENDING', attempts: 1 });
    expect((await ledger(orderId, kind)).last_error).toMatch(/did not answer within/);

    // The provider recovers. It also finishes the slow request it was given (as real providers
    // do: a timeout is not a refusal), so the retry's key is a repeat: still one message.
    await control({ delayMs: 0 });
    const sent = await waitForSent(orderId, kind);
    // Both requests have now been handled by the provider: one delivered, the other a repeat.
    await vi.waitFor(async () => expect((await providerStats()).duplicates).toBe(duplicatesBefore + 1), { timeout: 5000, interval: 25 });
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(1);
    expect(sent.provider_message_id).toBe(messages[0]!.id);
    expect(sent.attempts).toBeGreaterThanOrEqual(2);
  });

  it('the provider down opens the breaker: calls fail fast without reaching it; a half-open call that succeeds closes it', async () => {
    const client = new ProviderClient(config, { volumeThreshold: 3 });
    const states: BreakerState[] = [];
    client.onStateChange((state) => states.push(state));
    const orderId = await newOrder();
    const kind = 'customer.dispatched';
    const deps = { ledger: new BatchedNotificationLedger(database.db), provider: client, logger: silent };
    try {
      await control({ down: true });
      for (let i = 0; i < 3; i++) {
        await expect(client.send({ orderId: '1', kind, to: PHONE, text: 'probe' })).rejects.toThrow(/answered 503/);
      }
      expect(client.state).toBe('open');
      expect(states).toEqual(['open']);

      // Open: calls fail at once and the provider sees none of them.
      const requestsWhileOpen = (await providerStats()).requests;
      for (let i = 0; i < 5; i++) {
        const startedAt = Date.now();
        const error = await client.send({ orderId: '1', kind, to: PHONE, text: 'probe' }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ProviderUnavailableError);
        expect(Date.now() - startedAt).toBeLessThan(100);
        expect((error as ProviderUnavailableError).retryAfterMs).toBeGreaterThan(0);
        expect((error as ProviderUnavailableError).retryAfterMs).toBeLessThanOrEqual(RESET_MS);
      }
      // A job meets the open breaker: it fails with ProviderUnavailableError, the row stays PENDING,
      // and its retry waits at least until the breaker lets a call through.
      const jobError = await sendNotificationJob({ orderId, kind }, deps).catch((e: unknown) => e);
      expect(jobError).toBeInstanceOf(ProviderUnavailableError);
      expect(notificationBackoff(1, 'notification', jobError as Error)).toBeGreaterThanOrEqual(
        (jobError as ProviderUnavailableError).retryAfterMs,
      );
      // Nothing reached the provider, so no attempt is counted.
      expect(await ledger(orderId, kind)).toMatchObject({ status: 'PENDING', attempts: 0 });
      expect((await ledger(orderId, kind)).last_error).toMatch(/circuit breaker is open/);
      expect((await providerStats()).requests).toBe(requestsWhileOpen);

      // The provider comes back; after the reset timeout the breaker lets one trial call through.
      await control({ down: false });
      await vi.waitFor(() => expect(client.state).toBe('halfOpen'), { timeout: RESET_MS * 4, interval: 10 });
      expect(await sendNotificationJob({ orderId, kind }, deps)).toBe('sent');
      expect(client.state).toBe('closed');
      expect(states).toEqual(['open', 'halfOpen', 'closed']);
      expect(await delivered(orderId)).toHaveLength(1);
      expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', attempts: 1, last_error: null });
    } finally {
      await client.close();
    }
  });

  it('a half-open trial call its caller abandons does not close the breaker', async () => {
    const client = new ProviderClient(config, { volumeThreshold: 3 });
    const states: BreakerState[] = [];
    client.onStateChange((state) => states.push(state));
    const kind = 'customer.dispatched';
    try {
      await control({ down: true });
      for (let i = 0; i < 3; i++) await expect(client.send({ orderId: '1', kind, to: PHONE, text: 'probe' })).rejects.toThrow(/answered 503/);
      await vi.waitFor(() => expect(client.state).toBe('halfOpen'), { timeout: RESET_MS * 4, interval: 10 });
      // The provider is slow now; the trial's caller gives up before it answers.
      await control({ down: false, delayMs: 1000 });
      const caller = new AbortController();
      const trial = client.send({ orderId: '1', kind, to: PHONE, text: 'probe' }, { signal: caller.signal }).catch((e: unknown) => e);
      caller.abort();
      expect(await trial).toMatchObject({ message: 'the notification was abandoned by its caller' });
      // Nothing showed the provider is back: the breaker opens again rather than closing.
      expect(states).toEqual(['open', 'halfOpen', 'open']);
      expect(client.state).toBe('open');
    } finally {
      await control({ delayMs: 0 });
      await client.close();
    }
  });

  it('jobs that meet the open breaker wait for it without spending attempts, then are sent once', async () => {
    // A notifier of its own (own queue, own breaker with a clean window), on the same provider.
    const prefix = uniqueQueuePrefix();
    const own = await startNotifier({ ...config, queuePrefix: prefix }, silent);
    const ownQueue = createQueue(QUEUE_NAMES.notifications, { connection: redis, prefix });
    let opened = 0;
    own.provider.onStateChange((state) => {
      if (state === 'open') opened++;
    });
    const kind = 'customer.dispatched';
    try {
      await own.worker.waitUntilReady();
      await control({ down: true });
      const orderIds = await Promise.all(Array.from({ length: 6 }, () => newOrder()));
      // A producer that does not use NOTIFICATION_JOB_OPTIONS: 5 attempts 50 ms apart would be
      // spent in a quarter of a second if waiting on the breaker cost attempts.
      await ownQueue.addBulk(
        orderIds.map((orderId) => ({
          name: 'notify.send',
          data: { orderId, kind },
          opts: { jobId: notificationJobId(orderId, kind), attempts: 5, backoff: { type: 'fixed', delay: 50 } },
        })),
      );
      // The breaker opens, and opens again after two failed half-open trials: three reset periods.
      await vi.waitFor(() => expect(opened).toBeGreaterThanOrEqual(3), { timeout: RESET_MS * 10, interval: 10 });
      expect(await ownQueue.getFailedCount()).toBe(0);
      for (const orderId of orderIds) {
        const job = await ownQueue.getJob(notificationJobId(orderId, kind));
        expect(job!.attemptsMade).toBeLessThan(5);
      }

      await control({ down: false });
      for (const orderId of orderIds) await waitForSent(orderId, kind);
      for (const orderId of orderIds) expect(await delivered(orderId)).toHaveLength(1);
      expect(own.provider.state).toBe('closed');
      expect(await ownQueue.getFailedCount()).toBe(0);
    } finally {
      await own.close();
      await ownQueue.close();
      await deleteKeysWithPrefix(prefix);
    }
  });

  it('a batch enqueues every notification of many orders once, with the notification retry policy', async () => {
    const [a, b] = [await newOrder(), await newOrder()];
    await notifier.worker.pause();
    try {
      await enqueueNotificationBatch(
        queue,
        [
          { orderId: a, kind: 'customer.dispatched' },
          { orderId: a, kind: 'merchant.dispatched' },
          { orderId: b, kind: 'customer.dispatched' },
          { orderId: a, kind: 'customer.dispatched' },
        ],
        1000,
      );
      const waiting = (await queue.getJobs(['wait'])).filter((job) => [a, b].includes(job.data.orderId));
      expect(waiting.map((job) => job.id).sort()).toEqual(
        [
          notificationJobId(a, 'customer.dispatched'),
          notificationJobId(a, 'merchant.dispatched'),
          notificationJobId(b, 'customer.dispatched'),
        ].sort(),
      );
      for (const job of waiting) expect(job.opts).toMatchObject({ attempts: 10, backoff: { type: 'notification' } });
    } finally {
      notifier.worker.resume();
    }
    await waitForSent(a, 'customer.dispatched');
    await waitForSent(a, 'merchant.dispatched');
    await waitForSent(b, 'customer.dispatched');
    expect(await delivered(a)).toHaveLength(2);
    expect(await delivered(b)).toHaveLength(1);
  });

  it('the producer refuses a malformed notification and the wrong queue', async () => {
    const orderId = await newOrder();
    await expect(enqueueNotifications(queue, orderId, ['customer.exploded' as NotificationKind], 1000)).rejects.toThrow(
      /malformed notify\.send payload/,
    );
    await expect(enqueueNotifications(queue, 'not-an-id', ['customer.dispatched'], 1000)).rejects.toThrow(/malformed notify\.send payload/);
    const orders = createQueue(QUEUE_NAMES.orders, { connection: redis, prefix: queuePrefix });
    try {
      await expect(enqueueNotifications(orders, orderId, ['customer.dispatched'], 1000)).rejects.toThrow(/notifications queue/);
    } finally {
      await orders.close();
    }
  });

  it('the dev provider runs as a process, deduplicates by Idempotency-Key and stops on SIGTERM', async () => {
    const child = runTsx('workers/dev-provider.ts', [], { NOTIFY_PROVIDER_PORT: '0', LOG_LEVEL: 'info', LOG_FORMAT: 'json' });
    try {
      const line = await child.waitForLine(/dev provider ready/, 20_000);
      const base = /POST (http:\/\/127\.0\.0\.1:\d+)\/v1\/messages/.exec(line)![1]!;
      const post = () =>
        fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': '42:customer.dispatched' },
          body: JSON.stringify({ orderId: '42', kind: 'customer.dispatched', to: PHONE, text: 'hello' }),
        });
      const first = await post();
      expect(first.status).toBe(200);
      const repeat = await post();
      expect(repeat.status).toBe(200);
      expect(repeat.headers.get('idempotent-replayed')).toBe('true');
      expect((await repeat.json()).id).toBe((await first.json()).id);
      const listed = await (await fetch(`${base}/v1/messages`)).json();
      expect(listed.count).toBe(1);
      const noKey = await fetch(`${base}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId: '42', kind: 'customer.dispatched', to: PHONE, text: 'hello' }),
      });
      expect(noKey.status).toBe(400);
      child.process.kill('SIGTERM');
      expect((await child.exited).code).toBe(0);
    } finally {
      child.kill();
      await child.exited;
    }
  });
});
