import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import cron, { type ScheduledTask, type TaskContext } from 'node-cron';
import { ConfigError } from '../shared/config.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { enqueueWarmUp } from '../shared/queues/maintenance-producer.ts';

export interface SchedulerTicks {
  /**
   * The warm-up tick due at `due` (the cron slot, not the moment this scheduler got round to it):
   * enqueues `cron-warmup-<yyyymmddhhmm>` of that minute (UTC), so every scheduler firing the same
   * tick adds the same job and the warm-up runs once. Resolves with the job id.
   */
  warmUp(due: Date): Promise<string>;
}

/** What each tick does: enqueue, nothing more (the workers run the job). */
export function createSchedulerTicks(deps: { maintenanceQueue: Queue; timeoutMs: number; logger: Logger }): SchedulerTicks {
  return {
    async warmUp(due) {
      const jobId = await enqueueWarmUp(deps.maintenanceQueue, 'cron', due, deps.timeoutMs);
      deps.logger.info({ jobId, due: due.toISOString() }, 'warm-up tick: enqueued (a no-op if another scheduler did first)');
      return jobId;
    },
  };
}

export interface Schedule {
  readonly tasks: readonly ScheduledTask[];
  /** Stops every task and waits for the ticks in flight. */
  stop(): Promise<void>;
}

/** Waits before each further try of a tick whose enqueue failed (Redis away): about a minute in all. */
const TICK_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000, 30_000];

/**
 * Starts one node-cron task per spec of WARMUP_CRON (in the process's time zone, TZ). A tick whose
 * enqueue fails (Redis away) is tried again for about a minute, then logged as an error and given
 * up; the job id stays the tick's, so a late try still runs the warm-up once. A tick node-cron
 * reports missed (the event loop was blocked past its slot) is still enqueued, late.
 * Throws ConfigError naming WARMUP_CRON for a spec node-cron cannot parse, before starting any.
 */
export function scheduleWarmUps(
  specs: readonly string[],
  ticks: SchedulerTicks,
  logger: Logger,
  opts: { retryDelaysMs?: readonly number[] } = {},
): Schedule {
  for (const spec of specs) {
    if (!cron.validate(spec)) throw new ConfigError('WARMUP_CRON', `"${spec}" is not a cron expression (minute hour day month weekday)`);
  }
  const retryDelaysMs = opts.retryDelaysMs ?? TICK_RETRY_DELAYS_MS;
  const stopping = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const tryTick = async (due: Date) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await ticks.warmUp(due);
      } catch (error) {
        const delayMs = retryDelaysMs[attempt];
        if (delayMs === undefined || stopping.signal.aborted) throw error;
        logger.warn({ err: coerceError(error), due: due.toISOString(), retryInMs: delayMs }, 'warm-up tick could not enqueue; trying again');
        await sleep(delayMs, undefined, { signal: stopping.signal }).catch(() => undefined);
        if (stopping.signal.aborted) throw error;
      }
    }
  };
  const fire = (context: TaskContext) => {
    const tick = tryTick(context.date)
      .catch((error: unknown) => logger.error({ err: coerceError(error), due: context.date.toISOString() }, 'warm-up tick given up: not enqueued'))
      .finally(() => inFlight.delete(tick));
    inFlight.add(tick);
    return tick;
  };
  const cronLogger = {
    info: (message: string) => logger.debug({ source: 'node-cron' }, message),
    warn: (message: string) => logger.warn({ source: 'node-cron' }, message),
    error: (message: string | Error, err?: Error) => logger.error({ source: 'node-cron', err: coerceError(err ?? message) }, String(message)),
    debug: (message: string | Error) => logger.debug({ source: 'node-cron' }, String(message)),
  };
  const tasks = specs.map((spec) => {
    const task = cron.schedule(spec, fire, { name: `warm-up ${spec}`, logger: cronLogger });
    task.on('execution:missed', (context) => {
      logger.warn({ spec, due: context.date.toISOString() }, 'warm-up tick missed its slot: enqueueing it late');
      void fire(context);
    });
    return task;
  });
  return {
    tasks,
    async stop() {
      stopping.abort();
      await Promise.all(tasks.map((task) => task.destroy()));
      await Promise.all(inFlight);
    },
  };
}
