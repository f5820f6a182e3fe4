import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiClient } from '../shared/clients/create-client.ts';
import { IdGenerator } from '../shared/ids.ts';
import { Fleet, type Role } from './support/fleet.ts';
import { expectNotifiedOnce, postOrders, seedZones, waitAllDispatched, type Zone } from './support/fleet-orders.ts';
import { parseExposition, promtoolCheck, valueOf, wasSet, type Family } from './support/prometheus-text.ts';
import { seedOrders } from './support/seed-orders.ts';
import { closedPort } from './support/tcp-proxy.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix } from './support/test-redis.ts';
import { TEST_MERCHANT, orderBody } from './support/test-web.ts';

/**
 * Each process's /metrics after a small pipeline ran through the real fleet (the Procfile's
 * processes): valid for promtool, every family registered one the process set, and the values the
 * run implies. The families whose zero is the news (README, Metrics) are exempt from "set", but
 * must be there.
 */
const ZERO_IS_NEWS: Record<Exclude<Role, 'provider'>, readonly string[]> = {
  web: ['courier_enqueue_failures_total', 'courier_http_shed_requests_total', 'courier_http_rate_limited_requests_total', 'courier_rate_limit_fail_open_total', 'courier_lock_wait_seconds'],
  worker: ['courier_lock_wait_seconds'],
  notifier: ['courier_breaker_transitions_total'],
  scheduler: [],
};

const ORDERS = 6;
const SLOW = 120_000;

let database: TestDatabase;
let fleet: Fleet;
let zones: Zone[];
let apiKey: string;
let clientId: string;
const metricsUrl: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  zones = await seedZones(database.db, { zones: 1, riders: 5, capacity: 10 });
  // A merchant whose zone has no rider: its order fails dispatch, for compensation to find.
  await database.db('merchants').insert({ ...TEST_MERCHANT, id: '2001', name: 'Nowhere Kitchen', zone_id: 'empty-zone' });
  const client = await createApiClient(database.db, new IdGenerator(1), 'metrics test');
  apiKey = client.key;
  clientId = client.id;
  const [worker, notifier, scheduler] = await Promise.all([closedPort(), closedPort(), closedPort()]);
  fleet = await Fleet.start({
    mysqlUrl: database.mysqlUrl,
    redisUrl: TEST_REDIS_URL,
    // The web enqueues a warm-up at start (the worker runs it); a failed dispatch is re-driven, never escalated, while the test runs.
    env: { WARMUP_ON_START: 'true', DISPATCH_ATTEMPT_BUDGET: '100' },
    per: { worker: { METRICS_PORT: String(worker) }, notifier: { METRICS_PORT: String(notifier) }, scheduler: { METRICS_PORT: String(scheduler) } },
  });
  metricsUrl.web = `${fleet.api}/metrics`;
  for (const [role, port] of [['worker', worker], ['notifier', notifier], ['scheduler', scheduler]] as const) metricsUrl[role] = `http://127.0.0.1:${port}/metrics`;
}, SLOW);

afterAll(async () => {
  await fleet?.stop();
  await database?.drop();
  if (fleet) await Promise.all([deleteKeysWithPrefix(fleet.queuePrefix), deleteKeysWithPrefix(fleet.cachePrefix)]);
});

async function scrape(role: Exclude<Role, 'provider'>): Promise<{ text: string; families: Map<string, Family> }> {
  const response = await fetch(metricsUrl[role]!);
  expect(response.status).toBe(200);
  const text = await response.text();
  return { text, families: parseExposition(text) };
}

/** promtool is content; every courier_ family was set or is a documented zero that is there. */
function expectValidAndUsed(role: Exclude<Role, 'provider'>, text: string, families: Map<string, Family>): void {
  const checked = promtoolCheck(text);
  expect(checked.output, `promtool check metrics on the ${role}'s /metrics`).toBe('');
  expect(checked.code).toBe(0);
  const ours = [...families.values()].filter((family) => family.name.startsWith('courier_'));
  const unset = ours.filter((family) => !wasSet(family) && !ZERO_IS_NEWS[role].includes(family.name)).map((family) => family.name);
  expect(unset, `families the ${role} registered and never set`).toEqual([]);
  for (const name of ZERO_IS_NEWS[role]) expect(families.get(name)?.samples.length ?? 0, `${name} in the ${role}'s /metrics (its zero says something)`).toBeGreaterThan(0);
  for (const family of ours) {
    for (const sample of family.samples) expect(sample.labels.process, `${sample.name}'s process label`).toBe(role);
  }
}

describe('each process reports its own metrics, and only those', () => {
  let posted: string[];
  let stranded: string[];
  let reads = 0;

  it(
    'a small pipeline runs through the fleet: orders posted, one lost before its enqueue, one with no rider, a bad request, reads, a rider event',
    async () => {
      // Committed with no job, as after a crash between commit and enqueue: the reconciler puts it back.
      stranded = await seedOrders(database.db, { clientId, status: 'CREATED', count: 1, merchant: { id: zones[0]!.merchantId, zoneId: zones[0]!.zoneId, lat: TEST_MERCHANT.lat, lng: TEST_MERCHANT.lng } });
      posted = await postOrders(fleet.api, apiKey, zones, ORDERS);
      const [nowhere] = await postOrders(fleet.api, apiKey, [{ merchantId: '2001', zoneId: 'empty-zone' }], 1);
      const bad = await fetch(`${fleet.api}/v1/orders`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': 'metrics-bad', 'content-type': 'application/json' },
        body: JSON.stringify({ ...orderBody(), items: [] }),
      });
      expect(bad.status).toBe(400);
      expect((await fetch(`${fleet.api}/v1/nowhere`)).status).toBe(404);

      const dispatched = [...posted, ...stranded];
      await waitAllDispatched(database.db, dispatched, 60_000);
      await expectNotifiedOnce(database.db, fleet.provider, dispatched, 30_000);
      // The order with no rider failed dispatch and compensation has re-driven it at least once.
      await vi.waitFor(
        async () => expect(Number((await database.db('order_events').where({ order_id: nowhere, to_status: 'PRICED' }).count({ n: '*' }).first())?.n)).toBeGreaterThanOrEqual(2),
        { timeout: 30_000, interval: 250 },
      );
      const headers = { authorization: `Bearer ${apiKey}` };
      const read = async () => {
        reads += 1;
        expect((await fetch(`${fleet.api}/v1/orders/${posted[0]}`, { headers })).status).toBe(200);
      };
      for (let i = 0; i < 3; i++) await read();
      // Read on until one lands in the last quarter of the copy's L1 life, which is refreshed ahead.
      await vi.waitFor(
        async () => {
          await read();
          expect(valueOf((await scrape('web')).families, 'courier_order_l1_refreshes_total')).toBeGreaterThan(0);
        },
        { timeout: 10_000, interval: 100 },
      );
      const event = await fetch(`${fleet.api}/v1/orders/${posted[1]}/events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'picked_up' }),
      });
      expect(event.status).toBe(200);
    },
    SLOW,
  );

  it('web: intake outcomes and error codes, requests, order reads by source, its order locks, the edge, the switches', async () => {
    const { text, families } = await scrape('web');
    expectValidAndUsed('web', text, families);
    expect(valueOf(families, 'courier_intake_orders_total', { outcome: 'created' })).toBe(ORDERS + 1);
    expect(valueOf(families, 'courier_intake_batch_size_sum')).toBe(ORDERS + 1);
    expect(valueOf(families, 'courier_http_errors_total', { route: '/v1/orders', code: 'VALIDATION_FAILED' })).toBe(1);
    expect(valueOf(families, 'courier_http_request_seconds_count', { route: '/v1/orders', status: '202' })).toBe(ORDERS + 1);
    // Each route times its own requests (a hook bound to it); what no route matched has one series.
    expect(valueOf(families, 'courier_http_request_seconds_count', { method: 'GET', route: '/v1/orders/:id', status: '200' })).toBe(reads);
    expect(valueOf(families, 'courier_http_request_seconds_count', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(valueOf(families, 'courier_http_errors_total', { route: 'unmatched', code: 'ROUTE_NOT_FOUND' })).toBe(1);
    expect(valueOf(families, 'courier_order_reads_total')).toBe(reads);
    expect(valueOf(families, 'courier_order_l1_refreshes_total', { outcome: 'failed' })).toBe(0);
    expect(valueOf(families, 'courier_order_reads_total', { source: 'l1' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_lock_requests_total', { lock: 'order', outcome: 'acquired' })).toBe(1);
    expect(valueOf(families, 'courier_switch_on', { switch: 'tracking-rider' })).toBe(1);
    // Not the web's: the stages, queues, pools and maintenance are the worker's and notifier's.
    for (const name of ['courier_stage_batch_size', 'courier_queue_jobs', 'courier_cpu_pool_threads', 'courier_warmup_seconds', 'courier_breaker_state']) expect(families.has(name), name).toBe(false);
  });

  it('worker: its queues, the price and dispatch stages, 202 -> PRICED and PRICED -> DISPATCHED, CPU pools, locks, maintenance', async () => {
    const { text, families } = await scrape('worker');
    expectValidAndUsed('worker', text, families);
    const dispatched = posted.length + stranded.length;
    const priced = valueOf(families, 'courier_stage_items_total', { stage: 'price', outcome: 'priced' });
    // Every order priced once: the posted ones, the stranded one, the one with no rider (re-drives skip the price stage).
    expect(priced).toBe(dispatched + 1);
    expect(valueOf(families, 'courier_order_created_to_priced_seconds_count')).toBe(priced);
    expect(valueOf(families, 'courier_stage_batch_size_count', { stage: 'price' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_stage_batch_size_sum', { stage: 'price' })).toBeGreaterThanOrEqual(priced);
    expect(valueOf(families, 'courier_stage_items_total', { stage: 'dispatch', outcome: 'dispatched' })).toBe(dispatched);
    expect(valueOf(families, 'courier_order_priced_to_dispatched_seconds_count')).toBe(dispatched);
    expect(valueOf(families, 'courier_stage_items_total', { stage: 'dispatch', outcome: 'failed' })).toBeGreaterThanOrEqual(2);
    // Latencies of a few seconds at most on an idle fleet, and not nothing.
    const meanToPriced = valueOf(families, 'courier_order_created_to_priced_seconds_sum') / priced;
    expect(meanToPriced).toBeGreaterThan(0);
    expect(meanToPriced).toBeLessThan(30);
    for (const queue of ['orders', 'dispatch', 'maintenance']) {
      expect(families.get('courier_queue_jobs')!.samples.filter((s) => s.labels.queue === queue).map((s) => s.labels.state).sort()).toEqual(['active', 'delayed', 'failed', 'waiting']);
      expect(valueOf(families, 'courier_job_seconds_count', { queue, outcome: 'completed' }), queue).toBeGreaterThanOrEqual(1);
      expect(valueOf(families, 'courier_job_wait_seconds_count', { queue }), queue).toBeGreaterThanOrEqual(1);
    }
    expect(new Set(families.get('courier_queue_jobs')!.samples.map((s) => s.labels.queue))).toEqual(new Set(['orders', 'dispatch', 'maintenance']));
    for (const pool of ['price', 'match']) {
      expect(valueOf(families, 'courier_cpu_pool_threads', { pool }), pool).toBeGreaterThanOrEqual(1);
      expect(valueOf(families, 'courier_cpu_pool_busy_seconds_total', { pool }), pool).toBeGreaterThan(0);
    }
    expect(valueOf(families, 'courier_lock_requests_total', { lock: 'order', outcome: 'acquired' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_lock_requests_total', { lock: 'zone', outcome: 'acquired' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_warmup_seconds_count', { reason: 'start' })).toBe(1);
    expect(valueOf(families, 'courier_reconcile_items_total', { kind: 'created', action: 'enqueued' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_compensation_orders_total', { status: 'DISPATCH_FAILED', outcome: 'redriven' })).toBeGreaterThanOrEqual(1);
    for (const name of ['courier_intake_orders_total', 'courier_order_reads_total', 'courier_breaker_state', 'courier_scheduler_ticks_total']) expect(families.has(name), name).toBe(false);
  });

  it('notifier: its queue, the notify stage, the provider breaker', async () => {
    const { text, families } = await scrape('notifier');
    expectValidAndUsed('notifier', text, families);
    const [{ n: sent }] = (await database.db('notifications').where({ status: 'SENT' }).count({ n: '*' })) as [{ n: number }];
    expect(valueOf(families, 'courier_stage_items_total', { stage: 'notify', outcome: 'sent' })).toBe(Number(sent));
    expect(valueOf(families, 'courier_stage_batch_size_sum', { stage: 'notify' })).toBeGreaterThanOrEqual(Number(sent));
    expect(valueOf(families, 'courier_breaker_state', { breaker: 'notify-provider', state: 'closed' })).toBe(1);
    expect(valueOf(families, 'courier_breaker_state', { breaker: 'notify-provider', state: 'open' })).toBe(0);
    expect(valueOf(families, 'courier_job_seconds_count', { queue: 'notifications', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(families.get('courier_queue_jobs')!.samples.map((s) => s.labels.queue)).toEqual(['notifications', 'notifications', 'notifications', 'notifications']);
    for (const name of ['courier_order_created_to_priced_seconds', 'courier_lock_requests_total', 'courier_cpu_pool_threads', 'courier_intake_orders_total']) expect(families.has(name), name).toBe(false);
  });

  it('scheduler: its ticks and the switches, nothing else of ours', async () => {
    const { text, families } = await scrape('scheduler');
    expectValidAndUsed('scheduler', text, families);
    expect(valueOf(families, 'courier_scheduler_ticks_total', { job: 'compensate', outcome: 'enqueued' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_scheduler_ticks_total', { job: 'reconcile', outcome: 'enqueued' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(families, 'courier_scheduler_ticks_total', { job: 'warm-up', outcome: 'enqueued' })).toBe(0);
    expect([...families.keys()].filter((name) => name.startsWith('courier_')).sort()).toEqual([
      'courier_scheduler_ticks_total',
      'courier_switch_on',
      'courier_switches_last_read_timestamp_seconds',
    ]);
  });
});
