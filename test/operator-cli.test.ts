import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobProducer } from '../jobs/producer.ts';
import { OrderCache } from '../shared/cache/order-cache.ts';
import { loadConfig } from '../shared/config.ts';
import type { Db } from '../shared/db.ts';
import { createOrderWriter } from '../shared/orders/order-writer.ts';
import type { OrderStatus } from '../shared/orders/status.ts';
import { transitionOrder } from '../shared/orders/transition-orders.ts';
import { writeOrders } from '../shared/orders/write-orders.ts';
import { createQueue } from '../shared/queues/create-queue.ts';
import { priceBatchJobId } from '../shared/queues/job-ids.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { runScript, type Child } from './support/child-process.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

/**
 * The operators' commands for stuck orders (`npm run cli -- orders:stuck | orders:redrive |
 * orders:reconcile`), each run as a real process against real MariaDB and Redis.
 *
 * Two environments: the main one (orders:stuck and orders:redrive) and one of its own for
 * orders:reconcile, which looks at every CREATED, PRICED and PENDING row, so its counts are exact.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** A CLI run is one `node workers/cli.ts` process: a few seconds to start on a busy machine. */
const CLI_TIMEOUT = 180_000;

interface Env {
  readonly database: TestDatabase;
  readonly queuePrefix: string;
  readonly cachePrefix: string;
  readonly ordersQueue: Queue;
  readonly dispatchQueue: Queue;
  readonly notificationsQueue: Queue;
}

interface CliRun {
  readonly code: number | null;
  /** stdout and stderr, interleaved. */
  readonly output: string;
  readonly stdout: string;
}

let main: Env;
let reconcileEnv: Env;
let redis: Redis;
const children: Child[] = [];

async function createEnv(): Promise<Env> {
  const database = await createTestDatabase();
  await database.db('merchants').insert(TEST_MERCHANT);
  const queuePrefix = uniqueQueuePrefix();
  return {
    database,
    queuePrefix,
    cachePrefix: `courier-test-opcli-${randomBytes(5).toString('hex')}`,
    ordersQueue: createQueue(QUEUE_NAMES.orders, { connection: redis, prefix: queuePrefix }),
    dispatchQueue: createQueue(QUEUE_NAMES.dispatch, { connection: redis, prefix: queuePrefix }),
    notificationsQueue: createQueue(QUEUE_NAMES.notifications, { connection: redis, prefix: queuePrefix }),
  };
}

async function closeEnv(env: Env | undefined): Promise<void> {
  if (!env) return;
  await env.ordersQueue.close();
  await env.dispatchQueue.close();
  await env.notificationsQueue.close();
  await env.database.drop();
  await deleteKeysWithPrefix(env.queuePrefix);
  await deleteKeysWithPrefix(env.cachePrefix);
}

beforeAll(async () => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  main = await createEnv();
  reconcileEnv = await createEnv();
});

afterAll(async () => {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await closeEnv(main);
  await closeEnv(reconcileEnv);
  redis?.disconnect();
});

/** Runs `npm run cli -- <args>` (as the Procfile runs processes: node <file>) against an environment, to its exit. */
async function cli(args: string[], opts: { env?: Env; vars?: Record<string, string> } = {}): Promise<CliRun> {
  const env = opts.env ?? main;
  const child = runScript('workers/cli.ts', args, {
    MYSQL_URL: env.database.mysqlUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: env.queuePrefix,
    CACHE_PREFIX: env.cachePrefix,
    LOG_LEVEL: 'warn',
    ...opts.vars,
  });
  children.push(child);
  let stdout = '';
  child.process.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const { code } = await child.exited;
  return { code, output: child.output(), stdout };
}

interface SeedOptions {
  /** Time since its last change (updated_at), in ms. */
  readonly ageMs: number;
  readonly attempts?: number;
  /** next_attempt_at relative to now, in ms; none by default. */
  readonly nextAttemptInMs?: number;
  readonly lastError?: string;
  readonly priceJobId?: string;
}

/** One order row, written straight into MySQL in the state a test needs. */
async function seedOrder(db: Db, status: OrderStatus, opts: SeedOptions): Promise<string> {
  const { ageMs, ...rest } = opts;
  const [id] = await seedOrders(db, { clientId: '1', status, count: 1, updatedAgoMs: ageMs, ...rest });
  return id!;
}

async function rows(db: Db, orderIds: readonly string[]) {
  return db('orders').whereIn('id', orderIds).orderBy('id');
}

async function eventsOf(db: Db, orderIds: readonly string[]) {
  return db('order_events').whereIn('order_id', orderIds).orderBy('id');
}

/** Everything the commands could change in Redis: the job counts of both queues, and every key under the environment's prefixes. */
async function redisSnapshot(env: Env) {
  const keys: string[] = [];
  for (const prefix of [env.queuePrefix, env.cachePrefix]) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return {
    orders: await env.ordersQueue.getJobCounts(),
    dispatch: await env.dispatchQueue.getJobCounts(),
    notifications: await env.notificationsQueue.getJobCounts(),
    keys: keys.sort(),
  };
}

describe('--help', () => {
  it(
    'describes each command and lists its options',
    async () => {
      const [stuck, redrive, reconcile, top] = await Promise.all([
        cli(['orders:stuck', '--help']),
        cli(['orders:redrive', '--help']),
        cli(['orders:reconcile', '--help']),
        cli(['--help']),
      ]);
      for (const run of [stuck, redrive, reconcile, top]) expect(run.code, run.output).toBe(0);
      expect(stuck.stdout).toMatch(/Usage: courier orders:stuck \[options\]/);
      for (const option of ['--state <states...>', '--older-than <duration>', '--limit <n>', '--json']) expect(stuck.stdout).toContain(option);
      expect(stuck.stdout).toMatch(/\(default: all four\)/);
      expect(stuck.stdout).toMatch(/\(default: 1m\)/);

      expect(redrive.stdout).toMatch(/Usage: courier orders:redrive \[options\]/);
      for (const option of ['--state <state>', '--ids <ids>', '--older-than <duration>', '--limit <n>', '--dry-run']) expect(redrive.stdout).toContain(option);
      expect(redrive.stdout).toMatch(/PRICING_FAILED or\s+DISPATCH_FAILED/);

      expect(reconcile.stdout).toMatch(/Usage: courier orders:reconcile \[options\]/);
      expect(reconcile.stdout).toContain('--dry-run');

      for (const command of ['orders:stuck', 'orders:redrive', 'orders:reconcile']) expect(top.stdout).toContain(command);
    },
    CLI_TIMEOUT,
  );
});

describe('orders:stuck', () => {
  // Days old, so that only these pass --older-than 2d (the other tests' orders are younger).
  let failedPricing: string;
  let failedDispatch: string;
  let priced: string;
  let created: string;
  let tooRecent: string;
  let dispatched: string;
  const longError = `pricing timed out after 2000 ms; ${'x'.repeat(200)}`;

  beforeAll(async () => {
    const { db } = main.database;
    failedPricing = await seedOrder(db, 'PRICING_FAILED', { ageMs: 3 * DAY + 2 * HOUR, attempts: 2, nextAttemptInMs: -5 * MINUTE, lastError: longError });
    failedDispatch = await seedOrder(db, 'DISPATCH_FAILED', { ageMs: 3 * DAY + HOUR, attempts: 1, nextAttemptInMs: HOUR, lastError: 'no rider within 6000 m' });
    priced = await seedOrder(db, 'PRICED', { ageMs: 3 * DAY + 30 * MINUTE });
    created = await seedOrder(db, 'CREATED', { ageMs: 3 * DAY });
    tooRecent = await seedOrder(db, 'PRICING_FAILED', { ageMs: DAY, nextAttemptInMs: -MINUTE });
    dispatched = await seedOrder(db, 'DISPATCHED', { ageMs: 4 * DAY });
  });

  it(
    'lists the orders past --older-than by state, oldest first, and leaves newer ones and other states out (--json)',
    async () => {
      const run = await cli(['orders:stuck', '--older-than', '2d', '--json']);
      expect(run.code, run.output).toBe(0);
      const report = JSON.parse(run.stdout) as {
        total: number;
        olderThanMs: number;
        summary: { status: string; count: number; oldestAgeMs: number | null }[];
        orders: { id: string; status: string; ageMs: number; attempts: number; nextAttemptAt: string | null; nextAttemptInMs: number | null; lastError: string | null }[];
      };
      expect(report.olderThanMs).toBe(2 * DAY);
      expect(report.total).toBe(4);
      expect(report.summary.map(({ status, count }) => [status, count])).toEqual([
        ['CREATED', 1],
        ['PRICED', 1],
        ['PRICING_FAILED', 1],
        ['DISPATCH_FAILED', 1],
      ]);
      const pricingSummary = report.summary.find((state) => state.status === 'PRICING_FAILED')!;
      expect(pricingSummary.oldestAgeMs).toBeGreaterThanOrEqual(3 * DAY + 2 * HOUR);
      expect(pricingSummary.oldestAgeMs).toBeLessThan(3 * DAY + 3 * HOUR);

      expect(report.orders.map((order) => order.id)).toEqual([failedPricing, failedDispatch, priced, created]);
      const listed = report.orders.map((order) => order.id);
      expect(listed).not.toContain(tooRecent);
      expect(listed).not.toContain(dispatched);
      const [first, second] = report.orders;
      expect(first).toMatchObject({ status: 'PRICING_FAILED', attempts: 2, lastError: longError });
      expect(first!.nextAttemptInMs).toBeLessThan(0);
      expect(second).toMatchObject({ status: 'DISPATCH_FAILED', attempts: 1, lastError: 'no rider within 6000 m' });
      expect(second!.nextAttemptInMs).toBeGreaterThan(0);
      expect(new Date(second!.nextAttemptAt!).getTime()).toBeGreaterThan(Date.now());
    },
    CLI_TIMEOUT,
  );

  it(
    'narrows by --state (case and commas accepted) and --limit, and prints a readable report',
    async () => {
      const [text, limited, younger] = await Promise.all([
        cli(['orders:stuck', '--state', 'PRICING_FAILED', '--older-than', '2d']),
        cli(['orders:stuck', '--state', 'pricing_failed,DISPATCH_FAILED', '--older-than', '2d', '--limit', '1', '--json']),
        cli(['orders:stuck', '--state', 'PRICING_FAILED', '--older-than', '20h', '--json']),
      ]);
      for (const run of [text, limited, younger]) expect(run.code, run.output).toBe(0);

      expect(text.stdout).toMatch(/orders unchanged for more than 2d 0h|orders unchanged for more than 2d/);
      expect(text.stdout).toMatch(/PRICING_FAILED\s+1\s+oldest 3d 2h/);
      expect(text.stdout).not.toMatch(/DISPATCH_FAILED/);
      const line = text.stdout.split('\n').find((l) => l.startsWith(failedPricing))!;
      expect(line).toMatch(new RegExp(`^${failedPricing}\\s+PRICING_FAILED\\s+3d 2h\\s+2\\s+\\S+ \\S+Z \\(due 5m( \\d+s)? ago\\)\\s+pricing timed out after 2000 ms; x+…$`));
      expect(line.length).toBeLessThan(200); // the last error is cut short in the text report
      expect(text.stdout).not.toContain(tooRecent);

      const report = JSON.parse(limited.stdout) as { total: number; orders: { id: string }[] };
      expect(report.total).toBe(2);
      expect(report.orders.map((order) => order.id)).toEqual([failedPricing]);

      // --older-than decides: at 20h the day-old order is in, oldest first.
      const wider = JSON.parse(younger.stdout) as { orders: { id: string }[] };
      expect(wider.orders.map((order) => order.id)).toEqual([failedPricing, tooRecent]);
    },
    CLI_TIMEOUT,
  );
});

describe('orders:redrive', () => {
  it(
    '--dry-run reports what it would re-drive and skip, and changes nothing: no row, no event, no job, no key',
    async () => {
      const { db } = main.database;
      const pastBudget = await seedOrder(db, 'PRICING_FAILED', { ageMs: 10 * MINUTE, attempts: 5, nextAttemptInMs: HOUR, lastError: 'pricing timed out' });
      const elsewhere = await seedOrder(db, 'DISPATCHED', { ageMs: 10 * MINUTE });
      const oldFailed = await seedOrder(db, 'DISPATCH_FAILED', { ageMs: 6 * DAY, attempts: 1, nextAttemptInMs: HOUR });
      const all = [pastBudget, elsewhere, oldFailed];
      const rowsBefore = await rows(db, all);
      const eventsBefore = await db('order_events').count({ n: '*' });
      const redisBefore = await redisSnapshot(main);

      const [byIds, bySelection] = await Promise.all([
        cli(['orders:redrive', '--state', 'PRICING_FAILED', '--ids', `${pastBudget},${elsewhere}`, '--dry-run']),
        cli(['orders:redrive', '--state', 'DISPATCH_FAILED', '--older-than', '5d', '--dry-run']),
      ]);
      expect(byIds.code, byIds.output).toBe(0);
      expect(byIds.stdout).toContain(`would re-drive ${pastBudget}: PRICING_FAILED for 10m`);
      expect(byIds.stdout).toContain(`attempts 5 -> 6, to CREATED`);
      expect(byIds.stdout).toContain(`would skip ${elsewhere}: it is DISPATCHED, not PRICING_FAILED`);
      expect(byIds.stdout).toMatch(/dry run, nothing changed\): 2 chosen by id; would re-drive 1 \(PRICING_FAILED -> CREATED.*would skip 1/);

      expect(bySelection.code, bySelection.output).toBe(0);
      expect(bySelection.stdout).toContain(`would re-drive ${oldFailed}: DISPATCH_FAILED for 6d`);
      expect(bySelection.stdout).toMatch(/1 chosen \(the oldest DISPATCH_FAILED orders unchanged for more than 5d, --limit 20\); would re-drive 1 \(DISPATCH_FAILED -> PRICED/);

      expect(await rows(db, all)).toEqual(rowsBefore);
      expect(await db('order_events').count({ n: '*' })).toEqual(eventsBefore);
      expect(await redisSnapshot(main)).toEqual(redisBefore);
    },
    CLI_TIMEOUT,
  );

  it(
    're-drives the chosen ids only, past their budget and before their next attempt, with an event and a job each; an id in another state is skipped',
    async () => {
      const { db } = main.database;
      // Budgets are 3 (pricing) and 5 (dispatch) by default: both orders are past theirs, and neither is due.
      const pricing = await seedOrder(db, 'PRICING_FAILED', { ageMs: 2 * MINUTE, attempts: 7, nextAttemptInMs: HOUR, lastError: 'pricing timed out' });
      const dispatch = await seedOrder(db, 'DISPATCH_FAILED', { ageMs: 2 * MINUTE, attempts: 9, nextAttemptInMs: HOUR, lastError: 'no rider' });
      const delivered = await seedOrder(db, 'DISPATCHED', { ageMs: 2 * MINUTE });
      const notChosen = await seedOrder(db, 'PRICING_FAILED', { ageMs: 2 * MINUTE, attempts: 1, nextAttemptInMs: HOUR });
      const [notChosenBefore] = await rows(db, [notChosen]);

      const [pricingRun, dispatchRun] = await Promise.all([
        cli(['orders:redrive', '--state', 'PRICING_FAILED', '--ids', `${pricing},${delivered}`]),
        cli(['orders:redrive', '--state', 'DISPATCH_FAILED', '--ids', dispatch]),
      ]);
      expect(pricingRun.code, pricingRun.output).toBe(0);
      expect(dispatchRun.code, dispatchRun.output).toBe(0);

      const byId = new Map((await rows(db, [pricing, dispatch, delivered, notChosen])).map((row) => [String(row.id), row]));
      expect(byId.get(pricing)).toMatchObject({ status: 'CREATED', attempts: 8, version: 2, next_attempt_at: null });
      expect(byId.get(dispatch)).toMatchObject({ status: 'PRICED', attempts: 10, version: 2, next_attempt_at: null });
      expect(byId.get(delivered)).toMatchObject({ status: 'DISPATCHED', attempts: 0, version: 1 });
      expect(byId.get(notChosen)).toEqual(notChosenBefore);

      const events = await eventsOf(db, [pricing, dispatch, delivered, notChosen]);
      expect(events.map((event) => [String(event.order_id), event.from_status, event.to_status, event.version, event.actor])).toEqual(
        expect.arrayContaining([
          [pricing, 'PRICING_FAILED', 'CREATED', 2, 'operator'],
          [dispatch, 'DISPATCH_FAILED', 'PRICED', 2, 'operator'],
        ]),
      );
      expect(events).toHaveLength(2);

      // The price batch of its new try (attempt 8), which its row names, and a dispatch run of its zone; nothing for the order not chosen.
      expect(byId.get(pricing)!.price_job_id).toBe(priceBatchJobId([pricing], 8));
      const priceJobs = await main.ordersQueue.getJobs(['waiting', 'delayed']);
      expect(priceJobs.map((job) => [job.id, job.name, job.data])).toEqual([[priceBatchJobId([pricing], 8), 'orders.price', { orderIds: [pricing], attempt: 8 }]]);
      const dispatchJobs = await main.dispatchQueue.getJobs(['waiting', 'delayed']);
      expect(dispatchJobs.map((job) => `${job.name} ${job.data.zoneId}`)).toEqual([`dispatch.zone ${TEST_MERCHANT.zone_id}`]);

      // Through the write routine: the versions it replaced are marked stale in the cache (nobody had them cached).
      const cache = new OrderCache(redis, { prefix: main.cachePrefix, ttlMs: 60_000, finalTtlMs: 60_000 });
      expect(await cache.get(pricing)).toEqual({ kind: 'stale', version: 1 });
      expect(await cache.get(dispatch)).toEqual({ kind: 'stale', version: 1 });

      expect(pricingRun.stdout).toContain(`re-driven ${pricing}: PRICING_FAILED -> CREATED, attempt 8`);
      expect(pricingRun.stdout).toContain(`skipped ${delivered}: it is DISPATCHED, not PRICING_FAILED`);
      expect(pricingRun.stdout).toMatch(/orders:redrive: 2 chosen by id; re-driven 1 \(PRICING_FAILED -> CREATED, past any attempt budget, jobs enqueued\), skipped 1/);
      expect(dispatchRun.stdout).toMatch(/orders:redrive: 1 chosen by id; re-driven 1 \(DISPATCH_FAILED -> PRICED.*skipped 0/);
      await Promise.all([main.ordersQueue.drain(true), main.dispatchQueue.drain(true)]);
    },
    CLI_TIMEOUT,
  );

  it(
    'refuses a bad --state, a malformed id or a bad duration before touching anything',
    async () => {
      const { db } = main.database;
      const order = await seedOrder(db, 'PRICING_FAILED', { ageMs: 3 * MINUTE, attempts: 1, nextAttemptInMs: -MINUTE });
      const [before] = await rows(db, [order]);
      const redisBefore = await redisSnapshot(main);

      const [badState, badId, badDuration, stuckBadState] = await Promise.all([
        cli(['orders:redrive', '--state', 'CREATED', '--ids', order]),
        cli(['orders:redrive', '--state', 'PRICING_FAILED', '--ids', `${order},12ab`]),
        cli(['orders:redrive', '--state', 'PRICING_FAILED', '--older-than', 'ten minutes']),
        cli(['orders:stuck', '--state', 'DELIVERED']),
      ]);
      expect(badState.code).not.toBe(0);
      expect(badState.output).toMatch(/error: option '--state <state>' argument 'CREATED' is invalid\. "CREATED" is not one of PRICING_FAILED, DISPATCH_FAILED/);
      expect(badId.code).not.toBe(0);
      expect(badId.output).toMatch(/"12ab" is not an order id/);
      expect(badDuration.code).not.toBe(0);
      expect(badDuration.output).toMatch(/argument 'ten minutes' is invalid\. must be a duration like 30s, 10m, 2h or 1d/);
      expect(stuckBadState.code).not.toBe(0);
      expect(stuckBadState.output).toMatch(/"DELIVERED" is not one of CREATED, PRICED, PRICING_FAILED, DISPATCH_FAILED/);

      expect(await rows(db, [order])).toEqual([before]);
      expect(await eventsOf(db, [order])).toEqual([]);
      expect(await redisSnapshot(main)).toEqual(redisBefore);
    },
    CLI_TIMEOUT,
  );
});

describe('orders:reconcile', () => {
  /** Long thresholds, so the fresh order stays out however long a CLI process takes to start. */
  const thresholds = { RECONCILE_CREATED_AFTER_MS: String(10 * MINUTE), RECONCILE_STUCK_AFTER_MS: String(10 * MINUTE), RECONCILE_NOTIFY_AFTER_MS: String(10 * MINUTE) };
  let orphan: string;
  let withJob: string;
  let fresh: string;
  let stuckPriced: string;
  let notified: string;

  beforeAll(async () => {
    const { db } = reconcileEnv.database;
    orphan = await seedOrder(db, 'CREATED', { ageMs: HOUR, priceJobId: 'price-orphan-1-a0' }); // its batch was lost (Redis flushed, say)
    withJob = await seedOrder(db, 'CREATED', { ageMs: HOUR, priceJobId: 'price-alive-1-a0' });
    await reconcileEnv.ordersQueue.add('orders.price', { orderIds: [withJob], attempt: 0 }, { jobId: 'price-alive-1-a0' });
    fresh = await seedOrder(db, 'CREATED', { ageMs: 0 });
    stuckPriced = await seedOrder(db, 'PRICED', { ageMs: HOUR });
    notified = await seedOrder(db, 'DISPATCHED', { ageMs: HOUR });
    await db('notifications').insert({
      order_id: notified,
      kind: 'customer.dispatched',
      status: 'PENDING',
      attempts: 1,
      job_id: 'notify-lost',
      updated_at: db.raw('CURRENT_TIMESTAMP(3) - INTERVAL 1 HOUR'),
    });
  });

  it(
    '--dry-run says what it would do and enqueues nothing',
    async () => {
      const { db } = reconcileEnv.database;
      const all = [orphan, withJob, fresh, stuckPriced, notified];
      const rowsBefore = await rows(db, all);
      const redisBefore = await redisSnapshot(reconcileEnv);

      const run = await cli(['orders:reconcile', '--dry-run'], { env: reconcileEnv, vars: thresholds });
      expect(run.code, run.output).toBe(0);
      expect(run.stdout).toMatch(/CREATED orders unchanged for more than 10m: 2 checked, 1 with a live price job, 1 without one would be enqueued again/);
      expect(run.stdout).toMatch(
        /orders:reconcile \(dry run, nothing changed\) in \d+ ms: would enqueue 1 CREATED orders again, would record 0 PRICING_FAILED, would re-book 1 zones' dispatch for 1 PRICED orders, would enqueue 1 notifications again, 0 left to an operator/,
      );

      expect(await reconcileEnv.ordersQueue.getJob('price-orphan-1-a0')).toBeUndefined();
      expect(await rows(db, all)).toEqual(rowsBefore);
      expect(await redisSnapshot(reconcileEnv)).toEqual(redisBefore);
    },
    CLI_TIMEOUT,
  );

  it(
    'enqueues the CREATED order that has no job, books the stuck zone and resends the pending notification; leaves the rest',
    async () => {
      const run = await cli(['orders:reconcile'], { env: reconcileEnv, vars: thresholds });
      expect(run.code, run.output).toBe(0);
      expect(run.stdout).toMatch(
        /orders:reconcile in \d+ ms: 1 CREATED orders enqueued again, 0 recorded PRICING_FAILED, 1 zones' dispatch re-booked for 1 PRICED orders, 1 notifications enqueued again, 0 left to an operator/,
      );

      const { ordersQueue, dispatchQueue, notificationsQueue } = reconcileEnv;
      expect(await ordersQueue.getJob('price-orphan-1-a0')).toMatchObject({ name: 'orders.price', data: { orderIds: [orphan], attempt: 0 } });
      expect(await ordersQueue.getJob('price-alive-1-a0')).toMatchObject({ data: { orderIds: [withJob], attempt: 0 } });
      const priceJobs = await ordersQueue.getJobs(['waiting']);
      expect(priceJobs.flatMap((job) => job.data.orderIds as string[]).sort()).toEqual([orphan, withJob].sort()); // not the fresh one
      const dispatchJobs = await dispatchQueue.getJobs(['waiting', 'delayed']);
      expect(dispatchJobs.map((job) => `${job.name} ${job.data.zoneId}`)).toEqual([`dispatch.zone ${TEST_MERCHANT.zone_id}`]);
      expect(await notificationsQueue.getJob('notify-lost')).toMatchObject({
        data: { notifications: [{ orderId: notified, kind: 'customer.dispatched' }] },
      });
    },
    CLI_TIMEOUT,
  );
});

describe('orders:show', () => {
  it(
    "prints one order's story: its row, its events with the batch jobs that made them, its notifications, and where those jobs stand",
    async () => {
      const { db } = main.database;
      const config = loadConfig({ MYSQL_URL: main.database.mysqlUrl, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: main.queuePrefix, CACHE_PREFIX: main.cachePrefix });
      const producer = new JobProducer(redis, { prefix: main.queuePrefix, timeoutMs: 2000 });
      const writer = createOrderWriter(db, redis, config, {
        enqueueNotifications: async (_jobId, notifications) => void (await producer.add('notify.batch', { notifications: [...notifications] })),
      });
      try {
        const id = await seedOrder(db, 'CREATED', { ageMs: 0, priceJobId: 'price-story-1-a0' });
        await db('orders').where({ id }).update({ request_id: 'story-req-7f3a:01HZX' });
        const priced = await transitionOrder(writer, { orderId: id, to: 'PRICED', reason: '4200 m, surge 1', patch: { fee_cents: 800, eta_seconds: 1500 } }, { actor: 'worker:price', jobId: 'price-story-1-a0', waitMs: 1000 });
        expect(priced.kind).toBe('done');
        const dispatched = await writeOrders(writer, {
          orderIds: [id],
          actor: 'worker:dispatch',
          jobId: 'dispatch-test-zone-1',
          waitMs: 1000,
          plan: () => [{ orderId: id, to: 'DISPATCHED', reason: 'rider 7101', patch: { rider_id: '7101' } }],
        });
        const notifyJob = dispatched.notifications!.jobId;
        expect(dispatched.notifications!.enqueued).toBe(true);

        const run = await cli(['orders:show', id]);
        expect(run.code, run.output).toBe(0);
        expect(run.stdout).toMatch(new RegExp(`^order ${id}: DISPATCHED \\(version 3\\), merchant 1001, zone test-zone`, 'm'));
        expect(run.stdout).toMatch(/rider 7101, fee 800 cents, ETA 1500 s, attempts 0/);
        // The request it was created under: what to grep the processes' logs for.
        expect(run.stdout).toMatch(/^ {2}request story-req-7f3a:01HZX$/m);
        expect(run.stdout).toMatch(/v2 \S+ {2}CREATED -> PRICED {2}by worker:price: 4200 m, surge 1 {2}\[job price-story-1-a0\]/);
        expect(run.stdout).toMatch(/v3 \S+ {2}PRICED -> DISPATCHED {2}by worker:dispatch: rider 7101 {2}\[job dispatch-test-zone-1\]/);
        expect(run.stdout).toMatch(new RegExp(`customer\\.dispatched: PENDING, 0 calls {2}\\[job ${notifyJob}\\]`));
        expect(run.stdout).toMatch(new RegExp(`${notifyJob}: waiting on notifications`));
        expect(run.stdout).toMatch(/price-story-1-a0: gone/); // no such job was ever enqueued here

        const json = await cli(['orders:show', id, '--json']);
        expect(json.code, json.output).toBe(0);
        const story = JSON.parse(json.stdout);
        expect(story.events.map((event: { to: string }) => event.to)).toEqual(['PRICED', 'DISPATCHED']); // seeded: no intake event
        expect(story.jobIds).toEqual(['price-story-1-a0', 'dispatch-test-zone-1', notifyJob]);
        expect(story.requestId).toBe('story-req-7f3a:01HZX');
        expect(story.jobs[notifyJob]).toBe('waiting on notifications');
      } finally {
        await producer.close();
      }
    },
    CLI_TIMEOUT,
  );

  it(
    'an unknown order exits 1 saying so; a malformed id is refused before anything is read',
    async () => {
      const [unknown, malformed] = await Promise.all([cli(['orders:show', '999999999999']), cli(['orders:show', '12ab'])]);
      expect(unknown.code).toBe(1);
      expect(unknown.output).toMatch(/orders:show: no order 999999999999/);
      expect(malformed.code).not.toBe(0);
      expect(malformed.output).toMatch(/"12ab" is not an order id/);
    },
    CLI_TIMEOUT,
  );
});

describe('a dependency away', () => {
  it(
    'exits 1 with a one-line reason when MySQL or Redis cannot be reached',
    async () => {
      const [mysqlAway, redisAway] = await Promise.all([
        cli(['orders:stuck'], { vars: { MYSQL_URL: `mysql://root@127.0.0.1:${await closedPort()}/courier` } }),
        cli(['orders:reconcile'], { vars: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}` } }),
      ]);
      expect(mysqlAway.code).toBe(1);
      expect(mysqlAway.output.trim()).toMatch(/^courier: MySQL is not reachable at 127\.0\.0\.1:\d+\/courier: .*ECONNREFUSED.*$/);
      expect(redisAway.code).toBe(1);
      expect(redisAway.output.trim()).toMatch(/^courier: Redis is not reachable at 127\.0\.0\.1:\d+: .*ECONNREFUSED.*$/);
    },
    CLI_TIMEOUT,
  );
});
