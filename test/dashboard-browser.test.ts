/**
 * The dashboard as a person sees it: the web process started as a process, /admin/queues (and
 * /docs when this build serves it) opened in headless Chromium (Debian's, driven by
 * playwright-core; `npm test` installs it: scripts/setup.sh --browser), signed in as the viewer
 * and as the operator. Screenshots go to test/artifacts/ (ignored by git).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runScript, type Child } from './support/child-process.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestDatabase, type TestDatabase } from './support/test-database.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';
import { TEST_MERCHANT } from './support/test-web.ts';

const CHROMIUM = '/usr/bin/chromium';
// What works on this kind of machine: no sandbox (root), no GPU, and nothing that calls home.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const OPERATOR = 'browser-operator-secret';
const VIEWER = 'browser-viewer-secret';
const PHONE = '+86 138 0013 8000';
const PHONE_DIGITS = /138\D{0,3}0013\D{0,3}8000/;

const queuePrefix = uniqueQueuePrefix();
const profiles: string[] = [];
const contexts: BrowserContext[] = [];
let database: TestDatabase;
let web: Child;
let base: string;
let orders: Queue;
let failedOrderId: string;
let pricedOrders: string[];

/** A browser of its own, in a fresh profile, signed in with these basic-auth credentials. */
async function browserAs(username: string, password: string): Promise<Page> {
  const profile = mkdtempSync(join(tmpdir(), 'courier-chromium-'));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
    httpCredentials: { username, password },
    viewport: { width: 1400, height: 900 },
  });
  contexts.push(context);
  return context.pages()[0] ?? (await context.newPage());
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  database = await createTestDatabase();
  await database.db('merchants').insert(TEST_MERCHANT);
  web = runScript('workers/web.ts', [], {
    MYSQL_URL: database.mysqlUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    CACHE_PREFIX: queuePrefix.slice(1, -1),
    PORT: '0',
    HOST: '127.0.0.1',
    WARMUP_ON_START: 'false',
    DASHBOARD_OPERATOR_PASSWORD: OPERATOR,
    DASHBOARD_VIEWER_PASSWORD: VIEWER,
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  });
  const line = await web.waitForLine(/web listening/, 30_000);
  base = /API (http:\/\/127\.0\.0\.1:\d+)\/v1\/orders/.exec(line)![1]!;

  // Recent work on the board: a price batch that completed (kept), and a job from before batches
  // that failed with a customer's phone in its data and its reason.
  orders = new Queue('orders', { connection: { url: TEST_REDIS_URL }, prefix: queuePrefix });
  pricedOrders = await seedOrders(database.db, { clientId: '1', status: 'PRICED', count: 3 });
  failedOrderId = (await seedOrders(database.db, { clientId: '1', status: 'CREATED', count: 1 }))[0]!;
  const worker = new Worker(
    'orders',
    async (job) => {
      if (job.name === 'order.price') throw new Error(`the provider refused ${PHONE} for order ${String(job.data.orderId)}`);
      return { priced: 3 };
    },
    { connection: { url: TEST_REDIS_URL }, prefix: queuePrefix, autorun: false },
  );
  let finished = 0;
  const both = new Promise<void>((resolve) => {
    const count = () => ++finished === 2 && resolve();
    worker.on('completed', count);
    worker.on('failed', count);
  });
  await orders.add('orders.price', { orderIds: pricedOrders, attempt: 0 }, { jobId: 'price-browser-3-a0', removeOnComplete: { count: 100, age: 3600 } });
  await orders.add('order.price', { orderId: failedOrderId, dropoff: { phone: PHONE, address: '88 Century Ave' } }, { jobId: `order-${failedOrderId}`, attempts: 1 });
  void worker.run();
  await both;
  await worker.close();
}, 90_000);

afterAll(async () => {
  for (const context of contexts) await context.close();
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
  await orders?.close();
  web?.kill();
  await web?.exited;
  await database?.drop();
  await deleteKeysWithPrefix(queuePrefix);
  await deleteKeysWithPrefix(queuePrefix.slice(1, -1));
});

describe('the queue dashboard in a real browser', () => {
  it('shows the viewer every queue, the recent batches with what they carried, no retry button, and no phone number', async () => {
    const page = await browserAs('viewer', VIEWER);
    await page.goto(`${base}/admin/queues`);
    for (const queue of ['orders', 'dispatch', 'notifications', 'maintenance']) {
      await expect.poll(() => page.getByText(queue, { exact: true }).count(), { timeout: 20_000 }).toBeGreaterThan(0);
    }
    await screenshot(page, 'dashboard-viewer-overview');

    await page.goto(`${base}/admin/queues/queue/orders?status=completed`);
    await expect.poll(() => page.getByText(`orders.price: 3 orders from ${pricedOrders[0]}, attempt 0`).count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-viewer-completed');

    await page.goto(`${base}/admin/queues/queue/orders?status=failed`);
    await expect.poll(() => page.getByText(`order-${failedOrderId}`).count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.getByText(/the provider refused \[phone\]/).count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-viewer-failed');
    expect(await page.getByRole('button', { name: /retry/i }).count()).toBe(0);
    expect(await page.content()).not.toMatch(PHONE_DIGITS);
    // The job's data: the customer's drop-off is masked whole.
    await page.getByText('Data', { exact: true }).click();
    await expect.poll(() => page.getByText('[masked]').count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-viewer-failed-data');
    expect(await page.getByRole('button', { name: /retry/i }).count()).toBe(0);
    expect(await page.locator('body').innerText()).not.toMatch(PHONE_DIGITS);
    expect(await page.content()).not.toMatch(PHONE_DIGITS);
  });

  it('offers the operator a retry that works from the page (its Origin is the dashboard own)', async () => {
    const page = await browserAs('operator', OPERATOR);
    await page.goto(`${base}/admin/queues/queue/orders?status=failed`);
    const retry = page.getByRole('button', { name: /retry/i }).first();
    await expect.poll(() => retry.count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-operator-failed');
    expect(await page.content()).not.toMatch(PHONE_DIGITS);
    await retry.click();
    // bull-board asks to confirm a retry.
    const confirm = page.getByRole('button', { name: /confirm|retry/i }).last();
    if (await confirm.isVisible()) await confirm.click();
    await expect.poll(() => orders.getJobState(`order-${failedOrderId}`), { timeout: 20_000 }).not.toBe('failed');
  });

  it('serves /docs to a browser when this build has it (asserted only if the route exists)', async () => {
    const probe = await fetch(`${base}/docs`, { redirect: 'manual' });
    if (probe.status === 404) {
      console.info('dashboard-browser: /docs is not served by this build (404); nothing asserted about it');
      return;
    }
    const page = await browserAs('viewer', VIEWER);
    const response = await page.goto(`${base}/docs`);
    expect(response?.status()).toBeLessThan(400);
    await expect.poll(async () => (await page.locator('body').innerText()).length, { timeout: 20_000 }).toBeGreaterThan(0);
    await screenshot(page, 'docs');
  });
});
