import { performance } from 'node:perf_hooks';
import type { Client } from 'autocannon';
import { fmt, isTty, progress } from './log.ts';

export interface CleanStop {
  /** True once the time is up and the connections were told to finish. */
  readonly stopping: boolean;
  /** Clears the timers (call when autocannon reports its result). */
  dispose(): void;
}

/**
 * Stops an autocannon load cleanly after `seconds`: every connection closes after the response to
 * the request it has out, so no request is cut off mid-flight (the server would have done the work
 * uncounted). Meanwhile prints a progress line every second (under `progressLabel`, if given).
 */
export function stopCleanlyAfter(opts: {
  readonly clients: readonly Client[];
  readonly seconds: number;
  readonly startedAt: number;
  readonly responses: () => number;
  readonly progressLabel?: string;
}): CleanStop {
  let stopping = false;
  const stopTimer = setTimeout(() => {
    stopping = true;
    for (const client of opts.clients) {
      if (!client.destroyed) client.responseMax = Math.max(1, client.reqsMade);
    }
  }, opts.seconds * 1000);

  let lastLogged = 0;
  const ticker = setInterval(() => {
    if (opts.progressLabel === undefined) return;
    const elapsed = (performance.now() - opts.startedAt) / 1000;
    const left = Math.max(0, Math.ceil(opts.seconds - elapsed));
    const force = elapsed - lastLogged >= 5 || left === 0;
    if (force) lastLogged = elapsed;
    const responses = opts.responses();
    progress(
      `  [${opts.progressLabel}] ${left > 0 ? `${left} s left` : 'draining in-flight requests'}, ${fmt(responses)} responses (${fmt(responses / Math.max(elapsed, 0.001))}/s)`,
      force && !isTty,
    );
  }, 1000);

  return {
    get stopping() {
      return stopping;
    },
    dispose() {
      clearTimeout(stopTimer);
      clearInterval(ticker);
    },
  };
}
