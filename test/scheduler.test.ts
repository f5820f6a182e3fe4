import { afterAll, describe, expect, it, vi } from 'vitest';
import { createQueue } from '../shared/queues/create-queue.ts';
import { maintenanceJobId } from '../shared/queues/job-ids.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { runTsx, type Child } from './support/child-process.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';

const prefix = uniqueQueuePrefix();
const children: Child[] = [];

afterAll(async () => {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await deleteKeysWithPrefix(prefix);
});

/** The job ids a scheduler logged as enqueued for one kind of tick. */
function enqueued(child: Child, job: string): string[] {
  return child
    .output()
    .split('\n')
    .filter((line) => line.includes(`"msg":"${job} tick: enqueued`))
    .map((line) => (JSON.parse(line) as { jobId: string }).jobId);
}

describe('two scheduler processes at once', () => {
  it('fire the same ticks, and every tick is one job: compensation and reconciliation each run once per tick', async () => {
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'debug', // the compensation and reconciliation ticks log at debug
      LOG_FORMAT: 'json',
      WARMUP_CRON: '',
      COMPENSATE_CRON: '* * * * * *',
      RECONCILE_CRON: '*/2 * * * * *',
    };
    const schedulers = [runTsx('workers/scheduler.ts', [], env), runTsx('workers/scheduler.ts', [], env)];
    children.push(...schedulers);
    await Promise.all(schedulers.map((child) => child.waitForLine(/scheduler ready/, 30_000)));
    // Wait until both have fired at least three compensation ticks they share.
    const shared = () => {
      const [a, b] = schedulers.map((child) => new Set(enqueued(child, 'compensate')));
      return [...a!].filter((id) => b!.has(id));
    };
    await vi.waitFor(() => expect(shared().length).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 100 });
    for (const child of schedulers) child.process.kill('SIGTERM');
    await Promise.all(schedulers.map((child) => child.exited));

    const queue = createQueue(QUEUE_NAMES.maintenance, { connection: { url: TEST_REDIS_URL }, prefix });
    try {
      const jobs = await queue.getJobs(['waiting', 'delayed']);
      for (const job of ['compensate', 'reconcile'] as const) {
        const logged = new Set(schedulers.flatMap((child) => enqueued(child, job)));
        const inQueue = jobs.filter((queued) => queued.name === `orders.${job}`).map((queued) => queued.id);
        // Each tick both schedulers fired is there once: as many jobs as distinct ticks, not as enqueues.
        expect(new Set(inQueue).size, job).toBe(inQueue.length);
        expect(new Set(inQueue), job).toEqual(logged);
        expect(schedulers.reduce((sum, child) => sum + enqueued(child, job).length, 0), job).toBeGreaterThan(inQueue.length);
      }
      // The id is the tick's slot to the second, whichever scheduler got there.
      expect(shared()[0]).toMatch(/^cron-compensate-\d{14}$/);
      expect(maintenanceJobId('compensate', 'cron', new Date('2031-03-04T10:30:15.250Z'))).toBe('cron-compensate-20310304103015');
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 60_000);

  it('stops at start with exit code 78 naming COMPENSATE_CRON when it holds a spec node-cron cannot parse', async () => {
    const child = runTsx('workers/scheduler.ts', [], { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, COMPENSATE_CRON: 'every minute' });
    children.push(child);
    expect((await child.exited).code).toBe(78);
    expect(child.output()).toMatch(/bad configuration: COMPENSATE_CRON: "every minute"/);
  });
});
