import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, spawnLines, type LineProcess } from '../bench/lib/process/line-process.ts';

/**
 * `npm run chaos -- --quick` as a user runs it: the fleet on a MariaDB and a Redis of its own, every
 * scenario (worker SIGKILLs, Redis flushed and restarted, MariaDB crashed and restarted, the provider
 * slow, failing and down, duplicates and bad requests), each ending with its checks. It must exit 0
 * with a PASS row per scenario, nothing lost or done twice, and leave no process or data directory.
 */
const RUN_BOUND_MS = 400_000;
const SCENARIOS = ['kill', 'redis', 'mariadb', 'provider', 'requests'];

let run: LineProcess | undefined;

afterAll(async () => {
  if (!run?.running) return;
  // Out of time: Ctrl-C (its own clean-up), then whatever is left.
  run.signal('SIGINT');
  await Promise.race([run.exited, new Promise((r) => setTimeout(r, 45_000))]);
  run.signal('SIGKILL');
}, 60_000);

describe('npm run chaos -- --quick', () => {
  it(
    'runs every scenario, each passing its checks, and cleans up after itself',
    async () => {
      run = spawnLines('npm', ['run', '-s', 'chaos', '--', '--quick'], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' }, detached: true });
      const exit = await Promise.race([run.exited, new Promise<'bound'>((r) => setTimeout(() => r('bound'), RUN_BOUND_MS))]);
      const output = run.output();
      const explain = `npm run chaos -- --quick:\n${output.split('\n').slice(-80).join('\n')}`;
      expect(exit, explain).toEqual({ code: 0, signal: null });
      expect(output, explain).toContain(`chaos: every check passed (${SCENARIOS.length} scenarios)`);

      // The table: one row per scenario, 0 lost, 0 duplicates, PASS.
      const header = output.split('\n').findIndex((l) => /^\s+scenario\s+accepted\s+final\/escalated\s+lost/.test(l));
      expect(header, explain).toBeGreaterThan(0);
      const rows = output.split('\n').slice(header + 1, header + 1 + SCENARIOS.length);
      expect(rows.map((r) => r.trim().split(':')[0]), explain).toEqual(SCENARIOS);
      for (const row of rows) {
        const cells = row.trim().split(/\s{2,}/);
        const [, accepted, settled, lost, dup] = cells;
        expect(Number(accepted?.replace(/,/g, '')), row).toBeGreaterThan(0);
        expect(settled, row).toBe(accepted);
        expect(lost, row).toBe('0');
        expect(dup, row).toBe('0 / 0');
        expect(cells.at(-1), row).toBe('PASS');
      }
      expect(rows.find((r) => r.includes('mariadb:'))?.trim().split(/\s{2,}/)[5], 'the 503s counted right').toMatch(/^([1-9][\d,]*)\/\1$/);

      // Nothing left behind: its data directory, its processes.
      const dataDir = /data directory (\S+)/.exec(output)?.[1];
      expect(dataDir, explain).toBeDefined();
      expect(existsSync(dataDir!.replace(/\/data$/, '')), `${dataDir} removed`).toBe(false);
      const pids = [...output.matchAll(/\] ready: pid (\d+)/g)].map((m) => Number(m[1]));
      expect(pids.length).toBeGreaterThanOrEqual(6);
      const alive = pids.filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('workers/'); // not a pid reused since
        } catch {
          return false;
        }
      });
      expect(alive, 'fleet processes still running').toEqual([]);
    },
    RUN_BOUND_MS + 10_000,
  );
});
