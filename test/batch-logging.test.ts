import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loggerOptions } from '../shared/logger.ts';
import { buildDevProvider } from '../shared/notifications/dev-provider-app.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { createProducerRedis, type Redis } from '../shared/redis.ts';
import { startNotifier, type Notifier } from '../workers/notifier-pipeline.ts';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import { recordPricingFailed } from '../jobs/price-orders.ts';
import { seedOrders } from './support/seed-orders.ts';
import { createTestWeb, orderBody, TEST_MERCHANT, type TestWeb } from './support/test-web.ts';

/**
 * Following one order through the processes' logs: each batch job that carries it (price batch,
 * dispatch run, notification batch) writes one info line naming its orders and their request ids,
 * so `grep <order id>` and `grep <request id>` find its story. And what a job's failure leaves
 * behind (BullMQ's failed reason and stack, the order's last_error and event, the log line) never
 * quotes a phone or an address from a MySQL error.
 */

const PHONE = '+8613912345678';
const ADDRESS = '77 Lujiazui Ring Rd';

let web: TestWeb;
let provider: FastifyInstance;
let pipeline: OrderPipeline | undefined;
let notifier: Notifier | undefined;
let redis: Redis;
let rawQueue: Queue;
/** Every line the worker and the notifier wrote, with the processes' own logger options (redaction, scrubbing). */
const lines: string[] = [];
const logger = pino(loggerOptions({ logLevel: 'info' }, 'worker'), { write: (line: string) => void lines.push(line) });
let keyCounter = 0;

beforeAll(async () => {
  web = await createTestWeb({ dispatchWindowMs: 100 });
  await web.database.db('riders').insert({ id: '9001', name: 'Near', zone_id: TEST_MERCHANT.zone_id, lat: 31.2398, lng: 121.4999, capacity: 50 });
  provider = buildDevProvider();
  await provider.listen({ port: 0, host: '127.0.0.1' });
  const { port } = provider.server.address() as AddressInfo;
  const config = { ...web.config, notifyProviderUrl: `http://127.0.0.1:${port}` };
  pipeline = await startOrderPipeline(config, logger);
  notifier = await startNotifier(config, logger);
  redis = createProducerRedis(config);
  rawQueue = new Queue(QUEUE_NAMES.orders, { connection: redis, prefix: config.queuePrefix });
});

afterAll(async () => {
  await rawQueue?.close();
  redis?.disconnect();
  await pipeline?.close();
  await notifier?.close();
  await provider?.close();
  await web?.close();
});

async function post(requestId: string, body = orderBody()): Promise<string> {
  const res = await web.runtime.app.inject({
    method: 'POST',
    url: '/v1/orders',
    headers: { authorization: `Bearer ${web.apiKey}`, 'idempotency-key': `trail-${++keyCounter}-${Date.now()}`, 'x-request-id': requestId },
    payload: body,
  });
  expect(res.statusCode, res.body).toBe(202);
  return (res.json() as { id: string }).id;
}

type Line = Record<string, unknown> & { level: number; msg: string; orderIds?: string[]; requestIds?: (string | null)[] };
const parsed = (): Line[] => lines.map((line) => JSON.parse(line) as Line);
const INFO = 30;

/** The info lines whose message starts so and that name the order. */
function linesNaming(prefix: string, orderId: string): Line[] {
  return parsed().filter((line) => line.level === INFO && line.msg.startsWith(prefix) && line.orderIds?.includes(orderId));
}

describe("a batch job's info line", () => {
  it('names its orders and their request ids: price batch, dispatch run and notification batch, one line each', async () => {
    const requestIds = ['trail-a-01HZX', 'trail-b-01HZY', 'trail-c-01HZZ'];
    const ids = await Promise.all(requestIds.map((requestId) => post(requestId)));
    await web.runtime.intake.idle();
    // Dispatched, and both notifications of each sent: every batch job that carried them has run.
    await vi.waitFor(
      async () => {
        const sent = await web.database.db('notifications').whereIn('order_id', ids).where({ status: 'SENT' }).count({ n: '*' });
        expect(Number((sent as [{ n: number }])[0].n)).toBe(2 * ids.length);
      },
      { timeout: 30_000, interval: 50 },
    );
    await vi.waitFor(() => expect(ids.every((id) => linesNaming('notification batch', id).length > 0)).toBe(true), { timeout: 5000, interval: 20 });

    for (const [index, id] of ids.entries()) {
      const requestId = requestIds[index]!;
      for (const prefix of ['price batch', 'dispatch run', 'notification batch']) {
        const found = linesNaming(prefix, id);
        expect(found, `${prefix} ${id}`).not.toHaveLength(0);
        for (const line of found) {
          // The request id at the order's own place: the arrays pair up.
          expect(line.requestIds![line.orderIds!.indexOf(id)], `${prefix} ${id}`).toBe(requestId);
          // The line names its job, so a failure of that job (logged with the job id) is found from it.
          expect(typeof line.job, prefix).toBe('string');
        }
      }
    }
    // grep: every request id is on the lines of each of the three batch kinds, as plain text.
    for (const requestId of requestIds) {
      const grepped = lines.filter((line) => line.includes(requestId)).map((line) => (JSON.parse(line) as Line).msg.split(':')[0]);
      expect(new Set(grepped)).toEqual(new Set(['price batch', 'dispatch run of zone test-zone', 'notification batch']));
    }
    // Per-order detail stays out of info: one price line for the three orders, not one each.
    const priceLines = parsed().filter((line) => line.level === INFO && line.msg.startsWith('price batch') && ids.some((id) => line.orderIds?.includes(id)));
    expect(priceLines.length).toBeLessThan(ids.length);
    expect(lines.join('\n')).not.toContain('+8613800000000');
  });
});

describe('a job that fails on a MySQL error', () => {
  it('leaves no phone or address in its failed reason and stack, in the orders it records failed, or in its log lines', async () => {
    const { db } = web.database;
    // A trigger that refuses pricing with a message quoting the order's phone and address: the kind of
    // MySQL error (a value in the server's message, the statement's values in knex's) that must not spread.
    await db.raw(`
      CREATE TRIGGER refuse_pricing BEFORE UPDATE ON orders FOR EACH ROW
      BEGIN
        DECLARE refusal VARCHAR(255);
        IF NEW.status = 'PRICED' AND NEW.dropoff_phone = '${PHONE}' THEN
          SET refusal = CONCAT('cannot price for ', NEW.dropoff_phone, ' at ', NEW.dropoff_address);
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = refusal;
        END IF;
      END`);
    try {
      // Posted, then held back from the pipeline's own price batch: the job below is the one that fails.
      await pipeline!.worker.pause();
      const id = await post('failing-01J0', orderBody({ dropoff: { lat: 31.2304, lng: 121.4737, address: ADDRESS, phone: PHONE } }));
      await web.runtime.intake.idle();
      const own = await rawQueue.getJobs(['waiting', 'prioritized', 'delayed']);
      for (const job of own) await job.remove();
      // One attempt, so its failure is final at once and recorded against the orders.
      const job = await rawQueue.add('orders.price', { orderIds: [id], attempt: 0 }, { jobId: `failing-${id}`, attempts: 1 });
      pipeline!.worker.resume();

      await vi.waitFor(async () => expect((await db('orders').where({ id }).first()).status).toBe('PRICING_FAILED'), { timeout: 30_000, interval: 50 });
      const failed = await rawQueue.getJob(job.id!);
      const row = await db('orders').where({ id }).first();
      const event = await db('order_events').where({ order_id: id, to_status: 'PRICING_FAILED' }).first();
      const failureLines = lines.filter((line) => line.includes(job.id!));
      const stored = {
        failedReason: failed!.failedReason,
        stacktrace: (failed!.stacktrace ?? []).join('\n'),
        lastError: String(row.last_error),
        eventReason: String(event.reason),
        logs: failureLines.join('\n'),
      };
      // It did fail on the trigger's error (its code kept), and the failure was logged.
      expect(stored.lastError).toMatch(/ER_SIGNAL_EXCEPTION/);
      expect(stored.failedReason).toMatch(/ER_SIGNAL_EXCEPTION/);
      expect(failureLines.some((line) => (JSON.parse(line) as Line).msg === 'orders.price job failed for good')).toBe(true);
      for (const [where, text] of Object.entries(stored)) {
        expect(text, where).not.toContain(PHONE);
        expect(text, where).not.toContain('13912345678');
        expect(text, where).not.toContain('Lujiazui');
        expect(text, where).not.toMatch(/update `orders`/i);
      }
    } finally {
      await db.raw('DROP TRIGGER IF EXISTS refuse_pricing');
    }
  });

  it('recorded against the orders from the raw error too (not only from the scrubbed one the worker passes): the reason keeps the code, not the values', async () => {
    const { db } = web.database;
    // No job carries these: the pipeline leaves them be.
    const ids = await seedOrders(db, { clientId: web.clientId, status: 'CREATED', count: 2 });
    const raw = await db
      .raw('SELECT FROM orders WHERE dropoff_phone = ? AND dropoff_address = ?', [PHONE, ADDRESS])
      .catch((error: Error) => error);
    expect((raw as Error).message).toContain(PHONE);
    const recorded = await recordPricingFailed({ orderIds: ids, attempt: 0 }, raw as Error, {
      writer: web.runtime.writer,
      retry: { baseMs: 30_000, maxMs: 900_000 },
      jobId: 'price-raw-error',
    });
    expect(recorded).toBe(2);
    const rows = await db('orders').whereIn('id', ids);
    const events = await db('order_events').whereIn('order_id', ids).where({ to_status: 'PRICING_FAILED' });
    for (const text of [...rows.map((row) => String(row.last_error)), ...events.map((event) => String(event.reason))]) {
      expect(text).toMatch(/^You have an error in your SQL syntax/);
      expect(text).not.toContain('13912345678');
      expect(text).not.toContain('Lujiazui');
    }
  });
});
