import { setTimeout as sleep } from 'node:timers/promises';
import cron, { type ScheduledTask, type TaskContext } from 'node-cron';
import { ConfigError } from '../shared/config.ts';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import type { Config } from '../shared/config.ts';
import type { JobProducer } from '../jobs/producer.ts';
import type { TickOutcome } from '../shared/metrics/tick-metrics.ts';
import type { SwitchReader } from '../shared/switches/switches.ts';

export interface SchedulerTicks {
  /**
   * The warm-up tick due at `due` (the cron slot, not the moment this scheduler got round to it):
   * enqueues `cron-warmup-<yyyymmddhhmm>` of that minute (UTC), so every scheduler firing the same
   * tick adds the same job and the warm-up runs once. Resolves with the job id.
   */
  warmUp(due: Date): Promise<string>;
  /** The compensation tick due at `due`: enqueues `cron-compensate-<yyyymmddhhmmss>` of that second. */
  compensate(due: Date): Promise<string>;
  /** The reconciliation tick due at `due`: enqueues `cron-reconcile-<yyyymmddhhmmss>` of that second. */
  reconcile(due: Date): Promise<string>;
}

/** What each tick does: enqueue, nothing more (the workers run the job). */
export function createSchedulerTicks(deps: { producer: Pick<JobProducer, 'add'>; logger: Logger }): SchedulerTicks {
  // Compensation and reconciliation tick every few seconds: their runs log what they found, the
  // ticks themselves only at debug. A warm-up tick (twice a day) is worth a line.
  const enqueued = (jobId: string, due: Date, job: string) => {
    const log = job === 'warm-up' ? deps.logger.info.bind(deps.logger) : deps.logger.debug.bind(deps.logger);
    log({ jobId, due: due.toISOString() }, `${job} tick: enqueued (a no-op if another scheduler did first)`);
    return jobId;
  };
  return {
    async warmUp(due) {
      return enqueued(await deps.producer.add('cache.warm-up', { reason: 'cron', at: due.getTime() }), due, 'warm-up');
    },
    async compensate(due) {
      return enqueued(await deps.producer.add('orders.compensate', { reason: 'cron', at: due.getTime() }), due, 'compensate');
    },
    async reconcile(due) {
      return enqueued(await deps.producer.add('orders.reconcile', { reason: 'cron', at: due.getTime() }), due, 'reconcile');
    },
  };
}

/** One kind of tick: its cron specs, the variable they came from (for errors), and what it enqueues. */
export interface TickPlan {
  readonly job: string;
  readonly variable: string;
  readonly specs: readonly string[];
  readonly run: (due: Date) => Promise<string>;
  /** Why this tick is skipped now (a degradation switch is off), or undefined: it runs. */
  readonly skip?: () => string | undefined;
}

/** Told how each tick ended (for the scheduler's metrics). */
export type TickListener = (job: string, outcome: TickOutcome) => void;

export interface Schedule {
  readonly tasks: readonly ScheduledTask[];
  /** Stops every task and waits for the ticks in flight. */
  stop(): Promise<void>;
}

/** Waits before each further try of a tick whose enqueue failed (Redis away): about a minute in all. */
const TICK_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000, 30_000];

/** The warm-up ticks alone (WARMUP_CRON). */
export function scheduleWarmUps(
  specs: readonly string[],
  ticks: Pick<SchedulerTicks, 'warmUp'>,
  logger: Logger,
  opts: { retryDelaysMs?: readonly number[] } = {},
): Schedule {
  return scheduleTicks([{ job: 'warm-up', variable: 'WARMUP_CRON', specs, run: (due) => ticks.warmUp(due) }], logger, opts);
}

/**
 * Every tick of the scheduler process: warm-up, compensation, reconciliation, each on its own
 * schedule. With `switches`, a warm-up tick while the `warm-up` switch is off enqueues nothing and
 * logs that it skipped.
 */
export function scheduleMaintenance(
  config: Pick<Config, 'warmupCron' | 'compensateCron' | 'reconcileCron'>,
  ticks: SchedulerTicks,
  logger: Logger,
  opts: { retryDelaysMs?: readonly number[]; switches?: SwitchReader; onTick?: TickListener } = {},
): Schedule {
  const { switches } = opts;
  return scheduleTicks(
    [
      {
        job: 'warm-up',
        variable: 'WARMUP_CRON',
        specs: config.warmupCron,
        run: (due) => ticks.warmUp(due),
        ...(switches ? { skip: () => (switches.isOn('warm-up') ? undefined : 'the warm-up switch is off') } : {}),
      },
      { job: 'compensate', variable: 'COMPENSATE_CRON', specs: config.compensateCron, run: (due) => ticks.compensate(due) },
      { job: 'reconcile', variable: 'RECONCILE_CRON', specs: config.reconcileCron, run: (due) => ticks.reconcile(due) },
    ],
    logger,
    opts,
  );
}

/**
 * Starts one node-cron task per spec of each plan (in the process's time zone, TZ). A tick whose
 * enqueue fails (Redis away) is tried again for about a minute, then logged as an error and given
 * up; the job id stays the tick's, so a late try still runs the job once. A tick node-cron
 * reports missed (the event loop was blocked past its slot) is still enqueued, late.
 * Throws ConfigError naming the plan's variable for a spec node-cron cannot parse, before starting any.
 */
export function scheduleTicks(plans: readonly TickPlan[], logger: Logger, opts: { retryDelaysMs?: readonly number[]; onTick?: TickListener } = {}): Schedule {
  for (const plan of plans) {
    for (const spec of plan.specs) {
      if (!cron.validate(spec)) {
        throw new ConfigError(plan.variable, `"${spec}" is not a cron expression ([second] minute hour day month weekday)`);
      }
    }
  }
  const retryDelaysMs = opts.retryDelaysMs ?? TICK_RETRY_DELAYS_MS;
  const stopping = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const tryTick = async (plan: TickPlan, due: Date) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await plan.run(due);
      } catch (error) {
        const delayMs = retryDelaysMs[attempt];
        if (delayMs === undefined || stopping.signal.aborted) throw error;
        logger.warn({ err: coerceError(error), due: due.toISOString(), retryInMs: delayMs }, `${plan.job} tick could not enqueue; trying again`);
        await sleep(delayMs, undefined, { signal: stopping.signal }).catch(() => undefined);
        if (stopping.signal.aborted) throw error;
      }
    }
  };
  const fire = (plan: TickPlan, context: TaskContext) => {
    const skipped = plan.skip?.();
    if (skipped) {
      logger.info({ due: context.date.toISOString() }, `${plan.job} tick skipped: ${skipped}`);
      opts.onTick?.(plan.job, 'skipped');
      return Promise.resolve();
    }
    const tick = tryTick(plan, context.date)
      .then(
        () => opts.onTick?.(plan.job, 'enqueued'),
        (error: unknown) => {
          logger.error({ err: coerceError(error), due: context.date.toISOString() }, `${plan.job} tick given up: not enqueued`);
          opts.onTick?.(plan.job, 'given_up');
        },
      )
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
  const tasks = plans.flatMap((plan) =>
    plan.specs.map((spec) => {
      const task = cron.schedule(spec, (context) => fire(plan, context), { name: `${plan.job} ${spec}`, logger: cronLogger });
      task.on('execution:missed', (context) => {
        logger.warn({ spec, due: context.date.toISOString() }, `${plan.job} tick missed its slot: enqueueing it late`);
        void fire(plan, context);
      });
      return task;
    }),
  );
  return {
    tasks,
    async stop() {
      stopping.abort();
      await Promise.all(tasks.map((task) => task.destroy()));
      await Promise.all(inFlight);
    },
  };
}
