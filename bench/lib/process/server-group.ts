/**
 * A server of a test's or bench's own (redis-server, mariadbd) run in a process group of its own:
 * what the private servers share to find it, kill it outright and wait until it is gone.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** A process's command name, or null once it is gone. */
export function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** SIGKILL to the child's whole process group. */
export function killGroupOf(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Kills the group outright and resolves once the server itself (`serverPid`, named `comm`) is
 * gone, within `boundMs`: the watcher's exit does not mean the server's (its port and files are
 * free only then).
 */
export async function killServerGroup(group: ChildProcess, serverPid: number | null, comm: string, boundMs: number): Promise<void> {
  const exited = group.exitCode !== null || group.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => group.once('exit', () => r()));
  killGroupOf(group);
  const deadline = Date.now() + boundMs;
  await Promise.race([exited, sleep(boundMs)]);
  while (serverPid !== null && commOf(serverPid) === comm && Date.now() < deadline) await sleep(20);
}
