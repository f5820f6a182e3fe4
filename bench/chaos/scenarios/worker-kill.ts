/**
 * Scenario 1: a worker process killed with SIGKILL every few seconds (the two order workers and the
 * notifier in turn), each at a moment when its queues have a job in flight, and started again at
 * once, as a supervisor would. A dead worker's jobs are found stalled after JOB_LOCK_MS and run by
 * a live one; nothing accepted is lost, nothing done twice. The fault ends with the last kill: the
 * time to recover includes the restarts.
 */
import { performance } from 'node:perf_hooks';
import { lineOf } from '../../lib/fleet/fleet.ts';
import { QUEUE_NAMES } from '../../../shared/queues/queue-names.ts';
import { JobWatch } from '../fleet/job-watch.ts';
import type { Scenario } from '../scenario.ts';
import { QUEUE_PREFIX } from '../world.ts';

/** The queues each Procfile line consumes (the worker's maintenance jobs are rare: left out). */
const QUEUES_OF: Record<string, readonly string[]> = { worker: [QUEUE_NAMES.orders, QUEUE_NAMES.dispatch], notifier: [QUEUE_NAMES.notifications] };
/** How long a kill waits for its target's queues to have a job in flight. */
const ACTIVE_WAIT_MS = 3000;

export function workerKill(): Scenario {
  let kills = 0;
  let planned = 0;
  let midJob = 0;
  let watch: JobWatch | null = null;
  /** Each process's latest restart (a process is killed again only once it runs), and every restart's outcome. */
  const restarts = new Map<string, Promise<string | null>>();
  const outcomes: Promise<string | null>[] = [];
  return {
    key: 'kill',
    title: 'worker SIGKILL every few s',
    refusals: [],
    recovers: true,
    async fault(ctx) {
      const { fleet } = ctx.world;
      const every = ctx.s.quick ? 1 : 4;
      planned = Math.max(3, Math.floor(ctx.s.faultSeconds / every));
      watch = new JobWatch(ctx.world.redis.url, QUEUE_PREFIX);
      watch.start(Object.values(QUEUE_NAMES));
      const targets = fleet.names.filter((n) => QUEUES_OF[lineOf(n)] !== undefined);
      for (let i = 0; i < planned && !ctx.run.stopping; i++) {
        const name = targets[i % targets.length]!;
        await restarts.get(name); // its previous restart first: a process is killed once it runs
        const pid = fleet.procs.get(name)?.pid;
        ctx.phase(`SIGKILL ${name} (${i + 1} of ${planned}) once its queues have a job in flight`);
        const active = await watch.untilActive(QUEUES_OF[lineOf(name)]!, ACTIVE_WAIT_MS);
        const t = performance.now();
        await fleet.kill(name);
        kills += 1;
        if (active > 0) midJob += 1;
        const restart = fleet.start([name]).then(
          () => {
            ctx.note(`${name}: pid ${pid} killed with ${active} jobs active on its queues, pid ${fleet.procs.get(name)?.pid} ready ${((performance.now() - t) / 1000).toFixed(1)} s later`);
            return null;
          },
          (error: unknown) => `${name} did not start again: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
        );
        restarts.set(name, restart);
        outcomes.push(restart);
        if (i < planned - 1) await ctx.hold(every);
      }
    },
    async checks(ctx) {
      const failed = (await Promise.all(outcomes)).filter((e): e is string => e !== null);
      await watch?.stop();
      const stalled = [...(watch?.stalled ?? new Map<string, number>())];
      const taken = stalled.reduce((n, [, k]) => n + k, 0);
      ctx.note(`jobs a killed process held, found stalled and run again by another: ${taken}${taken ? ` (${stalled.map(([q, k]) => `${q} ${k}`).join(', ')})` : ''}`);
      return [
        { check: 'the workers were killed, with jobs in flight', found: `${kills} of ${planned} SIGKILLs, ${midJob} while their queues had jobs active`, ok: kills === planned && midJob > 0 },
        { check: 'each killed process started again', found: failed.length ? failed.join('; ') : `${outcomes.length} restarts, each ready`, ok: failed.length === 0 },
      ];
    },
  };
}
