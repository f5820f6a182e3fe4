/**
 * Recovery bench: `npm run bench:recovery` (issue 5). Part 1 (part1.ts): 100,000 orders in failed
 * or orphaned states re-driven by a real worker process in batches, against a baseline of one order
 * per write and one job per order (baseline.ts); target at most 60 s. Part 2 (part2.ts): a FLUSHALL
 * under load on a private Redis, tracked until every order accepted before it is carried again by
 * the live batch its rows name and done (flush-tracker.ts), no notification twice. Settings:
 * `npm run bench:recovery -- --help`.
 */
import { cpus } from 'node:os';
import { loadConfig } from '../../shared/config.ts';
import { databaseName } from '../../shared/db.ts';
import { dropBenchDatabase } from '../lib/bench-database.ts';
import { sectionHeading, summaryHead, writeResults } from '../lib/results.ts';
import { runBench } from '../lib/run-bench.ts';
import { fmt, log, printTable } from '../lib/log.ts';
import type { Summary } from '../lib/stats.ts';
import { part1 } from './part1.ts';
import { part2 } from './part2.ts';
import { dumpOutput, running, stopProcesses } from './processes.ts';
import { CHANGED, ORDERS, PARTS, MYSQL_URL_1, MYSQL_URL_2, TOTAL_BOUND_S, TARGET_S } from './settings.ts';

runBench('recovery', TOTAL_BOUND_S, async (run) => {
  for (const url of [MYSQL_URL_1, MYSQL_URL_2]) run.onCleanup(`drop the database ${databaseName(url)}`, () => dropBenchDatabase(loadConfig({ MYSQL_URL: url })));
  run.onCleanup('stop the processes still running', () => stopProcesses([...running.keys()]));

  log(
    `bench: recovery; node ${process.version}, ${cpus().length} CPUs (shared by this bench, the worker(s), MariaDB and Redis); ` +
      `parts ${[...PARTS].join(', ')}; MySQL ${databaseName(MYSQL_URL_1)} / ${databaseName(MYSQL_URL_2)}`,
  );
  const results: Record<string, unknown> = { ...summaryHead('recovery', CHANGED) };
  let failed = false;
  try {
    if (PARTS.has('1')) results.part1 = await part1();
    if (PARTS.has('2')) results.part2 = await part2();
  } catch (error) {
    dumpOutput();
    failed = true;
    results.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`bench: ${String(results.error)}`);
  }

  // -- summary
  const p1 = results.part1 as
    | { totalSeconds: number | null; ordersPerSec: number | null; verdict: string; baselines: { concurrency: number; ordersPerSec: number; extrapolatedSeconds: number }[] }
    | undefined;
  const p2 = results.part2 as
    | {
        settings: { rate: number };
        calibration: { capacityPerSec: number };
        figures: Record<string, number | null>;
        latency: { dispatch: Record<string, { dispatchMs: Summary }>; notified: Record<string, { notifiedMs: Summary }> };
        notifications: { noDuplicates: boolean };
      }
    | undefined;
  log('\n== summary');
  const rows: string[][] = [];
  if (p1) {
    rows.push([`part 1: ${fmt(ORDERS)} failed/orphaned orders re-driven (worker process, batches)`, `${fmt(p1.totalSeconds, 2)} s`, `${fmt(p1.ordersPerSec)} orders/s`, `target <= ${TARGET_S} s: ${p1.verdict}`]);
    for (const b of p1.baselines) {
      rows.push([`  baseline: one order per write and per job, ${b.concurrency} in flight`, `${fmt(b.extrapolatedSeconds, 1)} s (extrapolated)`, `${fmt(b.ordersPerSec)} orders/s`, p1.ordersPerSec ? `batch = ${fmt(p1.ordersPerSec / b.ordersPerSec, 1)}x` : '']);
    }
  }
  if (p2) {
    const fig = p2.figures;
    rows.push([`part 2: FLUSHALL under load (${fmt(p2.settings.rate)}/s; capacity ${fmt(p2.calibration.capacityPerSec)}/s)`, `${fmt(fig.ordersBackS, 2)} s`, 'orders accepted before it carried by live jobs again', '']);
    rows.push(['', `${fmt(fig.notificationsBackS, 2)} s`, "their notifications' batches live again", '']);
    rows.push(['', `${fmt(fig.preFlushDoneS, 2)} s`, 'all of them DISPATCHED/CANCELLED', '']);
    rows.push(['', `${fmt(fig.allDoneAfterFlushS, 2)} s`, 'every accepted order done', '']);
    const d = p2.latency.dispatch;
    const n = p2.latency.notified;
    rows.push(['', `p50 ${fmt(d.neverSawTheFlush?.dispatchMs.p50)} / max ${fmt(d.neverSawTheFlush?.dispatchMs.max)} ms`, '202 -> DISPATCHED, never saw the flush', '']);
    rows.push(['', `p50 ${fmt(d.sawTheFlush?.dispatchMs.p50)} / max ${fmt(d.sawTheFlush?.dispatchMs.max)} ms`, '202 -> DISPATCHED, in flight at the flush', '']);
    rows.push(['', `p50 ${fmt(n.neverSawTheFlush?.notifiedMs.p50)} / max ${fmt(n.neverSawTheFlush?.notifiedMs.max)} ms`, '202 -> notified, never saw the flush', '']);
    rows.push(['', `p50 ${fmt(n.sawTheFlush?.notifiedMs.p50)} / max ${fmt(n.sawTheFlush?.notifiedMs.max)} ms`, '202 -> notified, notifications owed at the flush', '']);
    rows.push(['', p2.notifications.noDuplicates ? 'none' : 'FOUND', 'notification sent twice', '']);
  }
  if (rows.length) printTable(['', 'time', 'figure', 'verdict'], rows);

  const cell = (x: string) => x.replace(/\|/g, '\\|');
  writeResults({
    bench: 'recovery',
    fullRun: CHANGED.length === 0,
    summary: results,
    markdown: [
      sectionHeading('Recovery (`npm run bench:recovery`)', CHANGED),
      '',
      `Parts ${[...PARTS].join(', ')}; part 1 re-drives ${fmt(ORDERS)} seeded orders with a worker process (target <= ${TARGET_S} s); part 2 runs FLUSHALL under load on a private Redis.${failed ? ' **The run failed** (see the JSON).' : ''}`,
      '',
      '| | time | figure | verdict |',
      '|---|---:|---|---|',
      ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
    ].join('\n'),
  });
  return failed ? 1 : 0;
});
