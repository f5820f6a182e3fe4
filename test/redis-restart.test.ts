import { Queue, Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startOrderPipeline, type OrderPipeline } from '../workers/order-pipeline.ts';
import { startWatchdog, type WatchdogVerdict } from '../workers/worker-watchdog.ts';
import { PrivateRedis } from './support/private-redis.ts';
import { createTestWeb, type TestWeb } from './support/test-web.ts';

const silent = pino({ level: 'silent' });
let redis: PrivateRedis;
let web: TestWeb;
let pipeline: OrderPipeline | undefined;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  web = await createTestWeb({ redisUrl: redis.url, jobLockMs: 1000, workerWatchdogMs: 1500 });
});

afterAll(async () => {
  await pipeline?.close();
  await web?.close();
  await redis?.stop();
});

async function waitUntilPriced(id: string): Promise<void> {
  await vi.waitFor(async () => expect((await web.database.db('orders').where({ id }).first()).status).not.toBe('CREATED'), {
    timeout: 20_000,
    interval: 100,
  });
}

describe('Redis restarts', () => {
  it('the worker keeps processing after Redis crashes and comes back empty', async () => {
    pipeline = await startOrderPipeline(web.config, silent);
    await waitUntilPriced(await web.postOrder());

    await redis.crash();
    // The outage: while Redis is down the intake still commits orders (they wait in MySQL).
    const duringOutage = await web.postOrder();
    expect((await web.database.db('orders').where({ id: duringOutage }).first()).status).toBe('CREATED');
    // Keep Redis down past BullMQ's blocking timeout (drainDelay 5 s + 1 s), the outage length after
    // which workers were reported to sit idle for good (taskforcesh/bullmq#4585). This wait is the
    // fault being injected, not synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 7000));
    await redis.restart();

    await vi.waitFor(() => expect(web.runtime.redis.status).toBe('ready'), { timeout: 10_000, interval: 50 });
    const afterRestart = await web.postOrder();
    await waitUntilPriced(afterRestart);
  });

  it('the watchdog replaces a worker that sits idle while jobs wait', async () => {
    const connection = { url: redis.url };
    const prefix = `${web.config.queuePrefix.slice(0, -1)}-watchdog}`;
    const queue = new Queue('watched', { connection, prefix });
    const processed: string[] = [];
    const makeWorker = (autorun: boolean) =>
      new Worker('watched', async (job) => void processed.push(job.id!), { connection, prefix, autorun });
    // A worker that never fetches, as one whose blocking connection never came back.
    let worker = makeWorker(false);
    let replacements = 0;
    const watchdog = startWatchdog({
      queue,
      current: () => worker,
      replace: async () => {
        replacements += 1;
        const stuck = worker;
        worker = makeWorker(true);
        await stuck.close(true);
      },
      stuckAfterMs: 300,
      logger: silent,
    });
    try {
      await queue.add('job', {}, { jobId: 'waiting-job' });
      await vi.waitFor(() => expect(processed).toEqual(['waiting-job']), { timeout: 10_000, interval: 20 });
      expect(replacements).toBe(1);
    } finally {
      watchdog.stop();
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('the watchdog leaves a full worker alone (a long run with the next job waiting), and a paused queue', async () => {
    const connection = { url: redis.url };
    const prefix = `${web.config.queuePrefix.slice(0, -1)}-watchdog-busy}`;
    const queue = new Queue('watched', { connection, prefix });
    let finishLongRun!: () => void;
    const longRun = new Promise<void>((resolve) => (finishLongRun = resolve));
    let started!: () => void;
    const isStarted = new Promise<void>((resolve) => (started = resolve));
    let inFlight = 0;
    const processed: string[] = [];
    const worker = new Worker(
      'watched',
      async (job) => {
        inFlight += 1;
        started();
        if (job.id === 'long-run') await longRun;
        processed.push(job.id!);
        inFlight -= 1;
      },
      { connection, prefix, concurrency: 1 },
    );
    const verdicts: WatchdogVerdict[] = [];
    let replacements = 0;
    const watchdog = startWatchdog({
      queue,
      current: () => worker,
      replace: async () => void (replacements += 1),
      stuckAfterMs: 300,
      busy: () => inFlight >= 1,
      logger: silent,
      onCheck: (verdict) => verdicts.push(verdict),
    });
    try {
      await queue.add('job', {}, { jobId: 'long-run' });
      await isStarted;
      await queue.add('job', {}, { jobId: 'next' });
      // Checks run every 100 ms: 8 busy verdicts span more than stuckAfterMs with a job waiting.
      await vi.waitFor(() => expect(verdicts.filter((v) => v === 'busy').length).toBeGreaterThanOrEqual(8), { timeout: 10_000, interval: 20 });
      expect(replacements).toBe(0);
      finishLongRun();
      await vi.waitFor(() => expect(processed).toEqual(['long-run', 'next']), { timeout: 10_000, interval: 20 });

      // An operator pauses the whole queue: jobs wait, nobody is stuck.
      await queue.pause();
      await queue.add('job', {}, { jobId: 'while-paused' });
      const before = verdicts.length;
      await vi.waitFor(() => expect(verdicts.slice(before).filter((v) => v === 'paused').length).toBeGreaterThanOrEqual(8), {
        timeout: 10_000,
        interval: 20,
      });
      expect(replacements).toBe(0);
      expect(verdicts).not.toContain('replaced');
    } finally {
      watchdog.stop();
      finishLongRun();
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
