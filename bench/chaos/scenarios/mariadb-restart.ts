/**
 * Scenario 3: MariaDB crashes (SIGKILL) mid-run and comes back on the same data directory. While it
 * is down the intake answers 503 DB_UNAVAILABLE at once (never a hang, nothing written); clients
 * retry with the same key; when it is back the intake answers 202 again by itself, every order
 * committed before the crash is still there, and the pipeline catches up.
 */
import { performance } from 'node:perf_hooks';
import { label } from '../traffic/post.ts';
import type { Scenario } from '../scenario.ts';

const REFUSAL = '503 DB_UNAVAILABLE';

export function mariadbRestart(): Scenario {
  let downAt = 0;
  let restartAt = 0;
  let backAt = 0;
  return {
    key: 'mariadb',
    title: 'MariaDB crash and restart',
    refusals: [REFUSAL],
    recovers: true,
    async fault(ctx) {
      const { mariadb } = ctx.world;
      ctx.phase('MariaDB down (SIGKILL)');
      await mariadb.crash();
      downAt = performance.now();
      await ctx.hold(ctx.s.faultSeconds);
      ctx.phase('MariaDB restarting (crash recovery)');
      restartAt = performance.now();
      await mariadb.restart();
      backAt = performance.now();
      ctx.note(`mariadbd killed, down ${((backAt - downAt) / 1000).toFixed(1)} s (restart included), same data directory`);
    },
    async checks(ctx) {
      // Answered while it was surely down: from the crash to the start of the restart (a request
      // waiting for a connection then may be answered 202 once the server is up, before we know).
      const down = ctx.traffic.answers.filter((a) => a.sentAt >= downAt && a.sentAt + a.ms <= restartAt);
      const refused = down.filter((a) => label(a) === REFUSAL);
      const slowest = Math.max(0, ...refused.map((a) => a.ms));
      const firstBack = ctx.traffic.answers.filter((a) => a.status === 202 && a.sentAt >= backAt).sort((a, b) => a.sentAt - b.sentAt)[0];
      const others = down.filter((a) => label(a) !== REFUSAL);
      if (others.length) ctx.note(`while down, not ${REFUSAL}: ${others.map((a) => `${label(a)} sent ${(a.sentAt - downAt).toFixed(0)} ms after the crash, in ${a.ms.toFixed(0)} ms`).join('; ')}`);
      ctx.note(`while down: ${down.length} answers, ${refused.length} ${REFUSAL} (slowest ${slowest.toFixed(0)} ms); first 202 ${firstBack ? `${((firstBack.sentAt + firstBack.ms - backAt) / 1000).toFixed(1)} s after MariaDB was back` : 'never'}`);
      return [
        { check: `while MariaDB was down the intake answered ${REFUSAL}`, found: `${refused.length} of ${down.length} answers while it was down`, ok: refused.length > 0 && refused.length === down.length },
        { check: 'the intake answered 202 again by itself', found: firstBack ? `first 202 ${((firstBack.sentAt + firstBack.ms - backAt) / 1000).toFixed(1)} s after MariaDB was back` : 'no 202 after MariaDB was back', ok: firstBack !== undefined },
      ];
    },
  };
}
