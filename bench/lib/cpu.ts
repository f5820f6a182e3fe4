/**
 * CPU per process, for every bench: named groups of pids (a fleet process, mariadbd, a redis-server,
 * the bench itself as the load generator) read from Linux /proc at two moments, and what each used
 * in between, as % of one core and per unit of work; the whole machine's busy time alongside (it is
 * shared: what our processes do not account for is someone else's).
 */
import { performance } from 'node:perf_hooks';
import { childPids, pidsNamed, readMachineCpuMs, sumCpuMs } from './proc-stats.ts';

/** Where each group's pids come from, read at each snapshot (a process may restart). */
export type CpuGroups = Record<string, () => readonly number[]>;

export interface CpuSnapshot {
  readonly at: number;
  readonly ms: Record<string, number | null>;
  readonly machineBusyMs: number | null;
  readonly machineTotalMs: number | null;
}

export interface CpuWindow {
  readonly seconds: number;
  /** CPU ms each group used in the window (null where /proc cannot tell). */
  readonly ms: Record<string, number | null>;
  /** The same as % of one core. */
  readonly percent: Record<string, number | null>;
  /** Our groups together, in ms. */
  readonly ourMs: number;
  /** The whole machine, every process: busy ms, and busy % of all its cores together. */
  readonly machineBusyMs: number | null;
  readonly machineBusyPercent: number | null;
}

/** The bench's own process: the load generator and the sampling. */
export const BENCH_GROUP = 'bench';

/** A process and the processes it started (a shell's exec'd node, a server's helpers). */
export const withChildren = (pid: number) => () => (pid > 0 ? [pid, ...childPids(pid)] : []);

/** MariaDB (or MySQL) and the shared Redis on this machine, by name. */
export const mariadbPids = () => pidsNamed(['mariadbd', 'mysqld']);

export function cpuSnapshot(groups: CpuGroups): CpuSnapshot {
  const ms: Record<string, number | null> = {};
  for (const [name, pids] of Object.entries(groups)) ms[name] = sumCpuMs(pids());
  const own = process.cpuUsage();
  ms[BENCH_GROUP] = (own.user + own.system) / 1000;
  const machine = readMachineCpuMs();
  return { at: performance.now(), ms, machineBusyMs: machine?.busyMs ?? null, machineTotalMs: machine?.totalMs ?? null };
}

export function cpuWindow(a: CpuSnapshot, b: CpuSnapshot): CpuWindow {
  const seconds = (b.at - a.at) / 1000;
  const ms: Record<string, number | null> = {};
  const percent: Record<string, number | null> = {};
  let ourMs = 0;
  for (const name of Object.keys(b.ms)) {
    const x = a.ms[name];
    const y = b.ms[name];
    const used = x === null || x === undefined || y === null || y === undefined ? null : y - x;
    ms[name] = used;
    percent[name] = used === null || seconds <= 0 ? null : used / 10 / seconds;
    ourMs += used ?? 0;
  }
  const busy = a.machineBusyMs !== null && b.machineBusyMs !== null ? b.machineBusyMs - a.machineBusyMs : null;
  const total = a.machineTotalMs !== null && b.machineTotalMs !== null ? b.machineTotalMs - a.machineTotalMs : null;
  return { seconds, ms, percent, ourMs, machineBusyMs: busy, machineBusyPercent: busy !== null && total ? (100 * busy) / total : null };
}

/** Microseconds of CPU per unit of work (an order, a response) per group. */
export function perUnitUs(window: CpuWindow, units: number): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, ms] of Object.entries(window.ms)) out[name] = ms === null || units <= 0 ? null : (ms * 1000) / units;
  return out;
}
