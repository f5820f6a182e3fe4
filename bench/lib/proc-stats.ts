/**
 * Read-only figures from Linux /proc for the benches: CPU time and RSS of a process, the pids of
 * its children and of processes by name, and the machine's busy/total CPU time. Every function
 * answers null (or an empty list) where /proc cannot tell (another OS, a process that is gone).
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ: 100 on every Linux Node supports. */
const CLOCK_TICKS_PER_S = 100;

/** utime + stime of a process (all its threads), in ms. */
export function readProcCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return null;
  }
}

/** Resident set size (VmRSS) of a process, in bytes. */
export function readRssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Pids of a process's children (those its main thread started). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Pids of the processes whose comm is one of names (e.g. mariadbd, redis-server). */
export function pidsNamed(names: readonly string[]): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((entry) => {
        try {
          return names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim());
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

/** Summed CPU ms of processes (null when none could be read). */
export function sumCpuMs(pids: readonly number[]): number | null {
  const values = pids.map(readProcCpuMs).filter((v): v is number => v !== null);
  return values.length ? values.reduce((a, b) => a + b, 0) : null;
}

/** The machine's CPU time so far, all cores together, in ms: busy (everything but idle and iowait) and total. */
export function readMachineCpuMs(): { busyMs: number; totalMs: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    if (values.length < 5 || values.some((v) => !Number.isFinite(v))) return null;
    // user nice system idle iowait irq softirq steal (guest time is already counted in user)
    const counted = values.slice(0, 8);
    const total = counted.reduce((a, b) => a + b, 0);
    const idle = (counted[3] ?? 0) + (counted[4] ?? 0);
    return { busyMs: ((total - idle) * 1000) / CLOCK_TICKS_PER_S, totalMs: (total * 1000) / CLOCK_TICKS_PER_S };
  } catch {
    return null;
  }
}
