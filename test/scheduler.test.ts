import { afterAll, describe, expect, it, vi } from 'vitest';
import { createQueue } from '../shared/queues/create-queue.ts';
import { maintenanceJobId } from '../shared/queues/job-ids.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { runScript, type Child } from './support/child-process.ts';
import { TEST_REDIS_URL, deleteKeysWithPrefix, uniqueQueuePrefix } from './support/test-redis.ts';

const prefix = uniqueQueuePrefix();
const children: Child[] = [];

afterAll(async () => {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  await deleteKeysWithPrefix(prefix);
});

/** The ticks a scheduler logged as enqueued for one kind of job: the tick's slot and the job id it added. */
function enqueued(child: Child, job: string): { due: string; jobId: string }[] {
  return child
    .output()
    .split('\n')
    .filter((line) => line.includes(`"msg":"${job} tick: enqueued`))
    .map((line) => JSON.parse(line) as { due: string; jobId: string });
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
    const schedulers = [runScript('workers/scheduler.ts', [], env), runScript('workers/scheduler.ts', [], env)];
    children.push(...schedulers);
    await Promise.all(schedulers.map((child) => child.waitForLine(/scheduler ready/, 30_000)));
    // Wait until both have fired at least three compensation ticks they share (the same slot).
    const sharedTicks = () => {
      const [a, b] = schedulers.map((child) => new Set(enqueued(child, 'compensate').map((tick) => tick.due)));
      return [...a!].filter((due) => b!.has(due));
    };
    await vi.waitFor(() => expect(sharedTicks().length).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 100 });
    for (const child of schedulers) child.process.kill('SIGTERM');
    await Promise.all(schedulers.map((child) => child.exited));

    const queue = createQueue(QUEUE_NAMES.maintenance, { connection: { url: TEST_REDIS_URL }, prefix });
    try {
      const jobs = await queue.getJobs(['waiting', 'delayed']);
      for (const job of ['compensate', 'reconcile'] as const) {
        const inQueue = jobs.filter((queued) => queued.name === `orders.${job}`).map((queued) => queued.id!);
        // The ids each tick was enqueued under, by either scheduler.
        const idsOfTick = new Map<string, Set<string>>();
        for (const tick of schedulers.flatMap((child) => enqueued(child, job))) {
          idsOfTick.set(tick.due, (idsOfTick.get(tick.due) ?? new Set()).add(tick.jobId));
        }
        const firedByBoth = [...idsOfTick.keys()].filter((due) => schedulers.every((child) => enqueued(child, job).some((tick) => tick.due === due)));
        expect(firedByBoth.length, job).toBeGreaterThanOrEqual(job === 'compensate' ? 3 : 1);
        // Every tick, fired by one scheduler or both, is exactly one job in the queue ...
        const jobsPerTick = [...idsOfTick].map(([due, ids]) => [due, inQueue.filter((id) => ids.has(id)).length]);
        expect(jobsPerTick.filter(([, count]) => count !== 1), job).toEqual([]);
        // ... and the queue holds nothing else: as many jobs as distinct ticks, not as enqueues.
        expect(inQueue.length, job).toBe(idsOfTick.size);
      }
      // The id is the tick's slot to the second, whichever scheduler got there.
      const [first] = sharedTicks();
      const idOfFirst = enqueued(schedulers[0]!, 'compensate').find((tick) => tick.due === first)!.jobId;
      expect(idOfFirst).toBe(`cron-compensate-${first!.slice(0, 19).replace(/[-T:]/g, '')}`);
      expect(maintenanceJobId('compensate', 'cron', new Date('2031-03-04T10:30:15.250Z'))).toBe('cron-compensate-20310304103015');
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 60_000);

  it('stops at start with exit code 78 naming COMPENSATE_CRON when it holds a spec node-cron cannot parse', async () => {
    const child = runScript('workers/scheduler.ts', [], { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, COMPENSATE_CRON: 'every minute' });
    children.push(child);
    expect((await child.exited).code).toBe(78);
    expect(child.output()).toMatch(/bad configuration: COMPENSATE_CRON: "every minute"/);
  });
});
