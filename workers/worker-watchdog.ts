import type { Queue, Worker } from 'bullmq';
import { coerceError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { withDeadline } from '../shared/with-deadline.ts';

export interface WatchdogOptions {
  readonly queue: Queue;
  readonly current: () => Worker;
  /** Replaces the worker with a fresh one on new connections. */
  readonly replace: () => Promise<void>;
  /** Jobs waiting and none started for this long: the worker is deemed stuck. */
  readonly stuckAfterMs: number;
  /**
   * Whether the current worker is running as many jobs as it may (a long maintenance run with the
   * next one waiting): busy, not stuck.
   */
  readonly busy?: () => boolean;
  readonly logger: Logger;
  /** Told what each check concluded. */
  readonly onCheck?: (verdict: WatchdogVerdict) => void;
}

/** idle: nothing waits; busy: the worker is full; paused: the worker or the whole queue is paused; waiting: jobs wait, not long enough yet; replaced. */
export type WatchdogVerdict = 'idle' | 'busy' | 'paused' | 'waiting' | 'replaced';

/**
 * BullMQ users report workers that sit idle after Redis comes back (the blocking connection parked
 * in "reconnecting" for good: taskforcesh/bullmq#4585, #2964): jobs wait, the worker is "running",
 * nothing happens. The watchdog asks the queue over its own connection whether jobs are waiting;
 * if they are and the worker has started none for stuckAfterMs, it replaces the worker. A worker
 * running as many jobs as it may (a long maintenance run), or a paused queue, is not stuck.
 */
export function startWatchdog(opts: WatchdogOptions): { stop(): void } {
  let lastStart = Date.now();
  let watched: Worker | undefined;
  const onActive = () => {
    lastStart = Date.now();
  };
  const watch = () => {
    const worker = opts.current();
    if (worker === watched) return;
    watched?.off('active', onActive);
    worker.on('active', onActive);
    watched = worker;
    lastStart = Date.now();
  };
  let checking = false;
  /** Not stuck now: the idle clock starts again. */
  const notStuck = (verdict: WatchdogVerdict) => {
    lastStart = Date.now();
    opts.onCheck?.(verdict);
  };
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      watch();
      const worker = opts.current();
      if (worker.closing) return;
      if (worker.isPaused()) return notStuck('paused');
      if (opts.busy?.()) return notStuck('busy');
      const counts = await withDeadline(opts.queue.getJobCounts('wait', 'prioritized'), opts.stuckAfterMs);
      const waiting = (counts.wait ?? 0) + (counts.prioritized ?? 0);
      if (waiting === 0) return notStuck('idle');
      // An operator paused the whole queue (BullMQ's global pause): waiting is what it should do.
      if (await withDeadline(opts.queue.isPaused(), opts.stuckAfterMs)) return notStuck('paused');
      const idleMs = Date.now() - lastStart;
      if (idleMs < opts.stuckAfterMs) return opts.onCheck?.('waiting');
      opts.logger.warn({ queue: opts.queue.name, waiting, idleMs }, 'worker stuck: jobs wait and none started; replacing it');
      await opts.replace();
      watch();
      opts.onCheck?.('replaced');
    } catch (error) {
      opts.logger.debug({ err: coerceError(error) }, 'watchdog check failed (Redis away?)');
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), Math.max(50, Math.floor(opts.stuckAfterMs / 3)));
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      watched?.off('active', onActive);
    },
  };
}
