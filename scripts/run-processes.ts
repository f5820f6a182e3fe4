/**
 * Runs a set of Procfile lines in this one terminal, each output line prefixed with its process's
 * name, and stops them the way production does: one SIGTERM each, then their own bounded drain.
 *
 * Each line runs as `sh -c '[VAR=value ...] exec <command>'` in a process group of its own, so the terminal's Ctrl-C
 * reaches only this runner, which passes one SIGTERM on: a process that got the terminal's SIGINT
 * and ours as well would take the second signal for "exit now" and skip its drain. `exec` leaves
 * no shell between us and node, so the exit we see is the process's own.
 *
 * A clean stop ends with one line naming them all; a process that exits on its own, or with a
 * non-zero code while stopping, is named with its code (the others are stopped then) and the
 * runner exits 1.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ProcfileProcess {
  readonly name: string;
  readonly command: string;
  readonly env?: Record<string, string>;
}

interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** It exited before it was asked to stop. */
  onItsOwn?: boolean;
}

const COLORS = [36, 35, 33, 32, 34, 31]; // cyan, magenta, yellow, green, blue, red

/** Answers the exit code for this runner once every process has exited. */
export function runProcesses(processes: readonly ProcfileProcess[], opts: { env: NodeJS.ProcessEnv; stopBoundMs: number }): Promise<number> {
  const width = Math.max(...processes.map((p) => p.name.length));
  const running: Running[] = processes.map((p, i) => {
    const child = spawn('sh', ['-c', execLine(p.command)], {
      env: { ...opts.env, ...p.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const label = p.name.padEnd(width);
    const prefix = process.stdout.isTTY ? `\x1b[${COLORS[i % COLORS.length]}m${label} |\x1b[0m ` : `${label} | `;
    pipeLines(child.stdout!, process.stdout, prefix);
    pipeLines(child.stderr!, process.stderr, prefix);
    return { name: p.name, child };
  });

  let stopReason: string | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const stopAll = (reason: string) => {
    if (stopReason !== undefined) return; // npm passes the terminal's signal on too: one stop is enough
    stopReason = reason;
    for (const r of running) if (!r.exit) signalGroup(r.child, 'SIGTERM');
    // The processes bound their own drain (SHUTDOWN_TIMEOUT_MS); this bound is for one that hangs anyway.
    killTimer = setTimeout(() => {
      for (const r of running) if (!r.exit) signalGroup(r.child, 'SIGKILL');
    }, opts.stopBoundMs);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, () => stopAll(signal));
  // Last resort if this runner dies with processes still up (they are not in our process group).
  process.on('exit', () => {
    for (const r of running) if (!r.exit) signalGroup(r.child, 'SIGKILL');
  });

  return new Promise((resolve) => {
    for (const r of running) {
      r.child.on('error', (error) => console.error(`start: ${r.name} could not start: ${error.message}`));
      r.child.on('close', (code, signal) => {
        r.exit = { code, signal };
        if (stopReason === undefined) {
          r.onItsOwn = true;
          console.error(`start: ${r.name} exited on its own (${describe(r.exit)}): stopping the others`);
          stopAll(`${r.name} exited`);
        }
        if (running.some((x) => !x.exit)) return;
        clearTimeout(killTimer);
        for (const signal of signals) process.removeAllListeners(signal);
        resolve(report(running, stopReason ?? ''));
      });
    }
  });
}

/** One line for a clean stop; otherwise each process that did not stop cleanly, with its code. */
function report(running: readonly Running[], reason: string): number {
  const failed = running.filter((r) => r.exit!.code !== 0 || r.onItsOwn);
  if (failed.length === 0) {
    console.log(`Courier stopped cleanly (${reason}): ${running.map((r) => r.name).join(', ')}`);
    return 0;
  }
  console.error(`Courier stopped (${reason}); not cleanly: ${failed.map((r) => `${r.name} (${describe(r.exit!)})`).join(', ')}`);
  return 1;
}

function describe(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** `A=1 B=2 node x.ts` -> `A=1 B=2 exec node x.ts`: sh exports the assignments to what it execs. */
function execLine(command: string): string {
  const [, assignments, rest] = /^((?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(.*)$/s.exec(command.trim())!;
  return `${assignments}exec ${rest}`;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function pipeLines(from: NodeJS.ReadableStream, to: NodeJS.WriteStream, prefix: string): void {
  let buffered = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) to.write(`${prefix}${line}\n`);
  });
  from.on('end', () => {
    if (buffered) to.write(`${prefix}${buffered}\n`);
  });
}
