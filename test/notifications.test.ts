import type { AddressInfo } from 'node:net';
import type { Job, Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JobPayloads } from '../jobs/payloads.ts';
import { JobProducer } from '../jobs/producer.ts';
import { sendNotificationsJob, type SendNotificationsDeps } from '../jobs/send-notifications.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { InvalidJobPayloadError, ProviderUnavailableError } from '../shared/errors/index.ts';
import { IdGenerator } from '../shared/ids.ts';
import { composeNotification, loadNotificationContexts } from '../shared/notifications/compose-notification.ts';
import {
  buildDevProvider,
  type DeliveredMessage,
  type DevProviderSettings,
  type DevProviderStats,
} from '../shared/notifications/dev-provider-app.ts';
import type { NotificationKind, OwedNotification } from '../shared/notifications/kinds.ts';
import { ProviderClient, notificationIdempotencyKey, type BreakerState } from '../shared/notifications/provider-client.ts';
import { notificationBackoff } from '../shared/notifications/retry-policy.ts';
import { notificationBatchJobId } from '../shared/queues/job-ids.ts';
import { createProducerRedis, type Redis } from '../shared/redis.ts';
import { startNotifier, type Notifier } from '../workers/notifier-pipeline.ts';
import { runScript } from './support/child-process.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

/** Small bounds so timeouts and the breaker's reset happen within a test. */
const TIMEOUT_MS = 300;
const RESET_MS = 500;
/** The notifier's MySQL statements are bounded by this (DB_STATEMENT_TIMEOUT_MS). */
const STATEMENT_TIMEOUT_MS = 1000;
/** A provider call carries at most this many messages here, so a test batch takes a few calls. */
const CALL_MAX = 40;
const PHONE = '+8613800000000';
const silent = pino({ level: 'silent' });

let database: TestDatabase;
let provider: FastifyInstance;
let config: Config;
let redis: Redis;
let producer: JobProducer;
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
      notifyProviderBatchMax: CALL_MAX,
      notifierConcurrency: 4,
      jobLockMs: 5000,
      dbStatementTimeoutMs: STATEMENT_TIMEOUT_MS,
    },
  );
  redis = createProducerRedis(config);
  producer = new JobProducer(redis, { prefix: queuePrefix, timeoutMs: 1000 });
  queue = producer.queue('notifications');
  notifier = await startNotifier(config, silent);
  await notifier.worker.waitUntilReady();
});

afterEach(async () => {
  await control({ delayMs: 0, failRate: 0, down: false });
});

afterAll(async () => {
  await notifier?.close();
  await producer?.close();
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

/** The job's dependencies, run directly (not through a queue) against the given provider client. */
function directDeps(client = notifier.provider, jobId = 'notify-direct'): SendNotificationsDeps {
  return { db: database.db, provider: client, jobId, logger: silent };
}

const both = (orderId: string): OwedNotification[] => [
  { orderId, kind: 'customer.dispatched' },
  { orderId, kind: 'merchant.dispatched' },
];

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

describe('notifications in batches', () => {
  it('are sent exactly once end to end: one batch job -> notifier -> one provider call -> ledger SENT', async () => {
    const orderId = await newOrder();
    const before = await providerStats();
    await producer.add('notify.batch', { notifications: both(orderId) });

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
    expect(customer).toMatchObject({ attempts: 1, provider_message_id: toCustomer.id, last_error: null, job_id: notificationBatchJobId(both(orderId)) });
    expect(customer.sent_at).toBeInstanceOf(Date);
    expect(merchant).toMatchObject({ attempts: 1, provider_message_id: toMerchant.id });
    const after = await providerStats();
    expect(after.requests - before.requests).toBe(1); // both messages in one batch call
    expect(after.batches - before.batches).toBe(1);
  });

  it('a batch of 100 costs a handful of statements and ceil(100 / call size) provider calls, and each is still sent once', async () => {
    const orderIds: string[] = [];
    for (let i = 0; i < 50; i++) orderIds.push(await newOrder());
    const statements: string[] = [];
    const onQuery = (query: { sql: string }) => statements.push(query.sql.replaceAll('`', ''));
    const before = await providerStats();
    database.db.on('query', onQuery);
    let outcome;
    try {
      outcome = await sendNotificationsJob({ notifications: orderIds.flatMap(both) }, directDeps());
    } finally {
      database.db.off('query', onQuery);
    }
    expect(outcome).toMatchObject({ sent: 100, alreadySent: 0, refused: 0 });
    const after = await providerStats();
    expect(after.deliveries - before.deliveries).toBe(100);
    expect(after.duplicates).toBe(before.duplicates);
    expect(after.requests - before.requests).toBe(Math.ceil(100 / CALL_MAX));
    const rows = await database.db('notifications').whereIn('order_id', orderIds);
    expect(rows).toHaveLength(100);
    expect(rows.every((row) => row.status === 'SENT' && row.attempts === 1 && row.provider_message_id)).toBe(true);
    // The rows did not exist (no change wrote them): read, one INSERT, read again, the orders, the
    // attempts, and one transaction of SENT marks (begin, lock, update, commit) for the whole batch.
    expect(statements.filter((sql) => /^insert into notifications/i.test(sql))).toHaveLength(1);
    expect(statements.filter((sql) => /^update notifications set attempts/i.test(sql))).toHaveLength(1);
    expect(statements.filter((sql) => /^update notifications set status = \?/i.test(sql))).toHaveLength(1);
    expect(statements.length).toBeLessThanOrEqual(10);
  });

  it('a duplicated batch job has no second effect', async () => {
    const orderId = await newOrder();
    const notifications: OwedNotification[] = [{ orderId, kind: 'customer.dispatched' }];
    const jobId = notificationBatchJobId(notifications);

    // Enqueued twice while the first is waiting: one job.
    const firstRun = nextOutcome(jobId);
    await notifier.worker.pause();
    try {
      expect(await producer.add('notify.batch', { notifications })).toBe(jobId);
      expect(await producer.add('notify.batch', { notifications })).toBe(jobId);
      const waiting = (await queue.getJobs(['wait'])).filter((job) => job.id === jobId);
      expect(waiting).toHaveLength(1);
    } finally {
      notifier.worker.resume();
    }
    expect((await firstRun).result).toMatchObject({ sent: 1 });
    const sent = await ledger(orderId, 'customer.dispatched');
    expect(sent.status).toBe('SENT');

    // Enqueued again after the job completed: the completed job is kept (for the dashboard), so that is a no-op;
    // put back as the reconciler does (the completed job removed first), it runs, finds SENT, sends nothing.
    const requestsBefore = (await providerStats()).requests;
    expect(await producer.add('notify.batch', { notifications })).toBe(jobId);
    expect(await queue.getJobState(jobId)).toBe('completed');
    const outcome = nextOutcome(jobId);
    await producer.putBack('notify.batch', { notifications });
    expect((await outcome).result).toMatchObject({ sent: 0, alreadySent: 1 });
    // Run directly, twice.
    expect(await sendNotificationsJob({ notifications }, directDeps())).toMatchObject({ sent: 0, alreadySent: 1 });
    expect(await sendNotificationsJob({ notifications }, directDeps())).toMatchObject({ sent: 0, alreadySent: 1 });

    expect((await providerStats()).requests).toBe(requestsBefore);
    expect(await delivered(orderId)).toHaveLength(1);
    expect(await ledger(orderId, 'customer.dispatched')).toMatchObject({ status: 'SENT', attempts: 1, provider_message_id: sent.provider_message_id });
  });

  it('two runs of one batch at once send each message once', async () => {
    const orderId = await newOrder();
    const notifications = both(orderId);
    const outcomes = await Promise.all([sendNotificationsJob({ notifications }, directDeps()), sendNotificationsJob({ notifications }, directDeps())]);
    expect(outcomes.reduce((sum, outcome) => sum + outcome.sent, 0)).toBe(2);
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(2);
    for (const kind of ['customer.dispatched', 'merchant.dispatched'] as const) {
      expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', provider_message_id: messages.find((m) => m.kind === kind)!.id });
    }
  });

  it('a retry after a crash between the provider\'s answer and the SENT mark notifies once', async () => {
    const orderId = await newOrder();
    const kind = 'customer.dispatched';
    // The run that crashed: it opened the ledger row, counted its attempt, and the provider accepted
    // the message; the process died before the row said SENT.
    await database.db('notifications').insert({ order_id: orderId, kind, status: 'PENDING', attempts: 1 });
    const context = (await loadNotificationContexts(database.db, [orderId])).get(orderId)!;
    const client = new ProviderClient(config);
    let first;
    try {
      [first] = await client.sendBatch([{ orderId, kind, ...composeNotification(kind, context) }]);
    } finally {
      await client.close();
    }
    expect(first).toMatchObject({ kind: 'sent', replayed: false });
    const before = await providerStats();

    // The retry calls the provider again with the same key; the provider drops the repeat.
    expect(await sendNotificationsJob({ notifications: [{ orderId, kind }] }, directDeps())).toMatchObject({ sent: 1 });
    const after = await providerStats();
    expect(after.deliveries).toBe(before.deliveries);
    expect(after.duplicates).toBe(before.duplicates + 1);
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.idempotencyKey).toBe(notificationIdempotencyKey(orderId, kind));
    expect(await ledger(orderId, kind)).toMatchObject({ status: 'SENT', attempts: 2, provider_message_id: (first as { messageId: string }).messageId });
  });

  it('some messages of a batch failing fail the job; its retries send only the ones still PENDING, each once', async () => {
    const orderIds: string[] = [];
    for (let i = 0; i < 10; i++) orderIds.push(await newOrder());
    const notifications = orderIds.flatMap(both);
    await control({ failRate: 0.3 });
    const first = await sendNotificationsJob({ notifications }, directDeps()).catch((error: unknown) => error);
    await control({ failRate: 0 });
    const afterFirst = await database.db('notifications').whereIn('order_id', orderIds);
    const pending = afterFirst.filter((row) => row.status === 'PENDING');
    if (first instanceof Error) {
      expect(first.message).toMatch(new RegExp(`^${pending.length} of 20 notifications failed`));
      expect(pending.every((row) => row.attempts === 1 && /failed this message/.test(row.last_error))).toBe(true);
    } else {
      expect(pending).toHaveLength(0); // the dice spared every message
    }
    const before = await providerStats();
    expect(await sendNotificationsJob({ notifications }, directDeps())).toMatchObject({ sent: pending.length, alreadySent: 20 - pending.length });
    expect((await providerStats()).deliveries - before.deliveries).toBe(pending.length);
    for (const orderId of orderIds) expect(await delivered(orderId)).toHaveLength(2);
    expect((await database.db('notifications').whereIn('order_id', orderIds)).every((row) => row.status === 'SENT')).toBe(true);
  });

  it("a batch whose ledger rows another transaction holds fails at the notifier's statement timeout, not at InnoDB's 50 s; once they are free its retry sends each once", async () => {
    const orderId = await newOrder();
    const notifications = both(orderId);
    const jobId = notificationBatchJobId(notifications);
    const holder = await database.db.transaction();
    let firstOutcome;
    try {
      // Uncommitted rows under the batch's own keys: the notifier's INSERT of its ledger rows waits on them.
      await holder('notifications').insert(notifications.map((n) => ({ order_id: n.orderId, kind: n.kind, status: 'PENDING', attempts: 0, job_id: 'holder' })));
      const outcome = nextOutcome(jobId);
      await producer.add('notify.batch', { notifications });
      firstOutcome = await outcome;
    } finally {
      await holder.rollback();
    }
    expect(firstOutcome.error?.message).toMatch(/max_statement_time exceeded/);
    await waitForSent(orderId, 'customer.dispatched');
    await waitForSent(orderId, 'merchant.dispatched');
    expect(await delivered(orderId)).toHaveLength(2);
  });

  it('a notification whose order is gone is REFUSED, not retried; the rest of its batch goes out', async () => {
    const orderId = await newOrder();
    const ghost = ids.next(1);
    const outcome = await sendNotificationsJob(
      { notifications: [{ orderId, kind: 'customer.cancelled' }, { orderId: ghost, kind: 'customer.cancelled' }] },
      directDeps(),
    );
    expect(outcome).toMatchObject({ sent: 1, refused: 1 });
    expect(await ledger(ghost, 'customer.cancelled')).toMatchObject({ status: 'REFUSED', attempts: 0 });
    expect((await ledger(ghost, 'customer.cancelled')).last_error).toMatch(/does not exist/);
  });

  it('a provider slower than the timeout fails the call at the bound, and the notification is sent once when it recovers', async () => {
    // One call, straight through the client: its messages come back failed with the timeout.
    await control({ delayMs: 1500 });
    const client = new ProviderClient(config);
    try {
      const [outcome] = await client.sendBatch([{ orderId: '1', kind: 'customer.dispatched', to: PHONE, text: 'probe' }]);
      expect(outcome).toEqual({ kind: 'failed', reason: `the notification provider did not answer within ${TIMEOUT_MS} ms` });
    } finally {
      await client.close();
    }

    // Through the notifier: the first attempt times out and is retried later.
    const orderId = await newOrder();
    const notifications: OwedNotification[] = [{ orderId, kind: 'customer.dispatched' }];
    const duplicatesBefore = (await providerStats()).duplicates;
    const firstAttempt = nextOutcome(notificationBatchJobId(notifications));
    await producer.add('notify.batch', { notifications });
    const failed = await firstAttempt;
    expect(failed.error?.message).toMatch(`did not answer within ${TIMEOUT_MS} ms`);
    expect(await ledger(orderId, 'customer.dispatched')).toMatchObject({ status: 'PENDING', attempts: 1 });
    expect((await ledger(orderId, 'customer.dispatched')).last_error).toMatch(/did not answer within/);

    // The provider recovers. It also finishes the slow request it was given (as real providers
    // do: a timeout is not a refusal), so the retry's key is a repeat: still one message.
    await control({ delayMs: 0 });
    const sent = await waitForSent(orderId, 'customer.dispatched');
    await vi.waitFor(async () => expect((await providerStats()).duplicates).toBe(duplicatesBefore + 1), { timeout: 5000, interval: 25 });
    const messages = await delivered(orderId);
    expect(messages).toHaveLength(1);
    expect(sent.provider_message_id).toBe(messages[0]!.id);
    expect(sent.attempts).toBeGreaterThanOrEqual(2);
  });

  it('the provider down opens the breaker: calls come back unavailable without reaching it; a half-open call that succeeds closes it', async () => {
    const client = new ProviderClient(config, { volumeThreshold: 3 });
    const states: BreakerState[] = [];
    client.onStateChange((state) => states.push(state));
    const orderId = await newOrder();
    const notifications: OwedNotification[] = [{ orderId, kind: 'customer.dispatched' }];
    const probe = [{ orderId: '1', kind: 'customer.dispatched' as const, to: PHONE, text: 'probe' }];
    try {
      await control({ down: true });
      for (let i = 0; i < 3; i++) expect(await client.sendBatch(probe)).toEqual([{ kind: 'failed', reason: expect.stringMatching(/answered 503/) }]);
      expect(client.state).toBe('open');
      expect(states).toEqual(['open']);

      // Open: the provider sees no call at all.
      const requestsWhileOpen = (await providerStats()).requests;
      for (let i = 0; i < 5; i++) expect(await client.sendBatch(probe)).toEqual([{ kind: 'unavailable', reason: expect.stringMatching(/circuit breaker is open/) }]);
      expect(client.retryAfterMs()).toBeGreaterThan(0);
      expect(client.retryAfterMs()).toBeLessThanOrEqual(RESET_MS);
      // A job meets the open breaker: it fails with ProviderUnavailableError, the row stays PENDING,
      // and its retry waits at least until the breaker lets a call through.
      const jobError = await sendNotificationsJob({ notifications }, directDeps(client)).catch((e: unknown) => e);
      expect(jobError).toBeInstanceOf(ProviderUnavailableError);
      expect(notificationBackoff(1, 'notification', jobError as Error)).toBeGreaterThanOrEqual((jobError as ProviderUnavailableError).retryAfterMs);
      // Nothing reached the provider, so no attempt is counted.
      expect(await ledger(orderId, 'customer.dispatched')).toMatchObject({ status: 'PENDING', attempts: 0 });
      expect((await ledger(orderId, 'customer.dispatched')).last_error).toMatch(/circuit breaker is open/);
      expect((await providerStats()).requests).toBe(requestsWhileOpen);

      // The provider comes back; after the reset timeout the breaker lets one trial call through.
      await control({ down: false });
      await vi.waitFor(() => expect(client.state).toBe('halfOpen'), { timeout: RESET_MS * 4, interval: 10 });
      expect(await sendNotificationsJob({ notifications }, directDeps(client))).toMatchObject({ sent: 1 });
      expect(client.state).toBe('closed');
      expect(states).toEqual(['open', 'halfOpen', 'closed']);
      expect(await delivered(orderId)).toHaveLength(1);
      expect(await ledger(orderId, 'customer.dispatched')).toMatchObject({ status: 'SENT', attempts: 1, last_error: null });
    } finally {
      await client.close();
    }
  });

  it('a half-open trial call its caller abandons does not close the breaker', async () => {
    const client = new ProviderClient(config, { volumeThreshold: 3 });
    const states: BreakerState[] = [];
    client.onStateChange((state) => states.push(state));
    const probe = [{ orderId: '1', kind: 'customer.dispatched' as const, to: PHONE, text: 'probe' }];
    try {
      await control({ down: true });
      for (let i = 0; i < 3; i++) await client.sendBatch(probe);
      await vi.waitFor(() => expect(client.state).toBe('halfOpen'), { timeout: RESET_MS * 4, interval: 10 });
      // The provider is slow now; the trial's caller gives up before it answers.
      await control({ down: false, delayMs: 1000 });
      const caller = new AbortController();
      const trial = client.sendBatch(probe, { signal: caller.signal });
      caller.abort();
      expect(await trial).toEqual([{ kind: 'failed', reason: 'the notification was abandoned by its caller' }]);
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
    const ownProducer = new JobProducer(redis, { prefix, timeoutMs: 1000 });
    const ownQueue = ownProducer.queue('notifications');
    let opened = 0;
    own.provider.onStateChange((state) => {
      if (state === 'open') opened++;
    });
    const kind = 'customer.dispatched';
    try {
      await own.worker.waitUntilReady();
      await control({ down: true });
      const orderIds = await Promise.all(Array.from({ length: 6 }, () => newOrder()));
      const batches = orderIds.map((orderId) => [{ orderId, kind }] as OwedNotification[]);
      // A producer that does not use the notification options: 5 attempts 50 ms apart would be
      // spent in a quarter of a second if waiting on the breaker cost attempts.
      await ownQueue.addBulk(
        batches.map((notifications) => ({
          name: 'notify.batch',
          data: { notifications },
          opts: { jobId: notificationBatchJobId(notifications), attempts: 5, backoff: { type: 'fixed', delay: 50 } },
        })),
      );
      // The breaker opens, and opens again after two failed half-open trials: three reset periods.
      await vi.waitFor(() => expect(opened).toBeGreaterThanOrEqual(3), { timeout: RESET_MS * 10, interval: 10 });
      expect(await ownQueue.getFailedCount()).toBe(0);
      for (const notifications of batches) expect((await ownQueue.getJob(notificationBatchJobId(notifications)))!.attemptsMade).toBeLessThan(5);

      await control({ down: false });
      for (const orderId of orderIds) await waitForSent(orderId, kind);
      for (const orderId of orderIds) expect(await delivered(orderId)).toHaveLength(1);
      expect(own.provider.state).toBe('closed');
      expect(await ownQueue.getFailedCount()).toBe(0);
    } finally {
      await own.close();
      await ownProducer.close();
      await deleteKeysWithPrefix(prefix);
    }
  });

  it('a per-notification job left in Redis by the pipeline before batches (notify.send) is still sent, once', async () => {
    const orderId = await newOrder();
    await queue.add('notify.send', { orderId, kind: 'customer.cancelled' }, { jobId: `notify-${orderId}-customer-cancelled` });
    const sent = await waitForSent(orderId, 'customer.cancelled');
    expect(sent.job_id).toBe(`notify-${orderId}-customer-cancelled`);
    expect(await delivered(orderId)).toHaveLength(1);
  });

  it('the producer refuses a malformed notification batch before anything is added', async () => {
    const orderId = await newOrder();
    const before = await queue.getJobCounts('wait', 'delayed');
    const bad: unknown[] = [
      { notifications: [{ orderId, kind: 'customer.exploded' }] },
      { notifications: [{ orderId: 'not-an-id', kind: 'customer.dispatched' }] },
      { notifications: [] },
      { notifications: [{ orderId, kind: 'customer.dispatched' }], extra: true },
    ];
    for (const payload of bad) {
      await expect(producer.add('notify.batch', payload as JobPayloads['notify.batch'])).rejects.toThrow(InvalidJobPayloadError);
    }
    await expect(producer.add('notify.batch', bad[0] as JobPayloads['notify.batch'])).rejects.toThrow(/malformed notify\.batch payload/);
    expect(await queue.getJobCounts('wait', 'delayed')).toEqual(before);
  });

  it('the dev provider runs as a process, deduplicates each message of a batch by its key, and stops on SIGTERM', async () => {
    const child = runScript('workers/dev-provider.ts', [], { NOTIFY_PROVIDER_PORT: '0', LOG_LEVEL: 'info', LOG_FORMAT: 'json' });
    try {
      const line = await child.waitForLine(/dev provider ready/, 20_000);
      const base = /POST (http:\/\/127\.0\.0\.1:\d+)\/v1\/messages/.exec(line)![1]!;
      const message = (key: string) => ({ idempotencyKey: key, orderId: '42', kind: 'customer.dispatched', to: PHONE, text: 'hello' });
      const post = (messages: unknown[]) =>
        fetch(`${base}/v1/messages/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) });
      const first = await post([message('42:a'), message('42:b')]);
      expect(first.status).toBe(200);
      const { results } = await first.json();
      expect(results.map((r: { status: number; duplicate: boolean }) => [r.status, r.duplicate])).toEqual([
        [200, false],
        [200, false],
      ]);
      const repeat = await (await post([message('42:b'), message('42:c')])).json();
      expect(repeat.results[0]).toMatchObject({ idempotencyKey: '42:b', status: 200, duplicate: true, id: results[1].id });
      expect(repeat.results[1]).toMatchObject({ idempotencyKey: '42:c', duplicate: false });
      expect((await (await fetch(`${base}/v1/messages`)).json()).count).toBe(3);
      const tooMany = await post(Array.from({ length: 101 }, (_, i) => message(`42:${i}`)));
      expect(tooMany.status).toBe(400);
      expect((await tooMany.json()).code).toBe('BATCH_TOO_LARGE');
      child.process.kill('SIGTERM');
      expect((await child.exited).code).toBe(0);
    } finally {
      child.kill();
      await child.exited;
    }
  });
});
