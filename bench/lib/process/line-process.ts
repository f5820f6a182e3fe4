/**
 * A child process whose output is read line by line: the one helper the tests (test/support/
 * child-process.ts) and the benches (bench/lib/bench-process.ts) spawn with. It keeps the whole
 * output for a test's assertions and the last lines for a bench's error report, tells listeners of
 * every line, and waits for a line with a bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: the processes' working directory, and what their files are relative to. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export type Exit = { code: number | null; signal: NodeJS.Signals | null };
export type Stream = 'out' | 'err';

/** The node arguments that run one of our TypeScript files: Node 24 strips the types itself. */
export function nodeArgsFor(file: string, args: readonly string[] = []): string[] {
  return [file, ...args];
}

export interface LineProcess {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** Everything it printed so far, stdout and stderr interleaved as they came. */
  output(): string;
  /** Its last lines (at most keepLines). */
  readonly lastLines: string[];
  /** Called with every non-empty line, as it comes. */
  onLine(listener: (stream: Stream, line: string) => void): void;
  /** Resolves with the first line so far or to come that matches; rejects when it exits first or the bound passes. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** A signal to it (to its whole process group when it was started detached); nothing if it is gone. */
  signal(signal: NodeJS.Signals): void;
  readonly running: boolean;
}

export interface LineProcessOptions {
  readonly cwd?: string;
  readonly env: NodeJS.ProcessEnv;
  /** A process group of its own, so signal() reaches whatever it starts too. */
  readonly detached?: boolean;
  /** How many of its last lines lastLines keeps (default 200). */
  readonly keepLines?: number;
  /** Keep the whole output for output() (default true; a long bench run turns it off). */
  readonly keepOutput?: boolean;
}

export function spawnLines(command: string, args: readonly string[], opts: LineProcessOptions): LineProcess {
  const child = spawn(command, [...args], { cwd: opts.cwd ?? ROOT, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const keepLines = opts.keepLines ?? 200;
  const keepOutput = opts.keepOutput ?? true;
  let text = '';
  const lastLines: string[] = [];
  const listeners = new Set<(stream: Stream, line: string) => void>();
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  for (const [stream, readable] of [['out', child.stdout], ['err', child.stderr]] as const) {
    let buffered = '';
    readable?.setEncoding('utf8');
    readable?.on('data', (chunk: string) => {
      if (keepOutput) text += chunk;
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        lastLines.push(line);
        if (lastLines.length > keepLines) lastLines.shift();
        for (const listener of listeners) listener(stream, line);
      }
    });
    // A last line without its newline still counts.
    readable?.on('end', () => {
      const line = buffered;
      buffered = '';
      if (!line.trim()) return;
      lastLines.push(line);
      if (lastLines.length > keepLines) lastLines.shift();
      for (const listener of listeners) listener(stream, line);
    });
  }
  /** Both pipes drained after the exit: nothing more will be printed. */
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    process: child,
    pid: child.pid ?? -1,
    exited,
    output: () => text,
    lastLines,
    onLine: (listener) => void listeners.add(listener),
    get running() {
      return running();
    },
    signal(signal) {
      if (!running() && !opts.detached) return;
      try {
        if (opts.detached && child.pid !== undefined) process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch {
        // already gone
      }
    },
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const seen = keepOutput ? text.split('\n').find((l) => pattern.test(l)) : lastLines.find((l) => pattern.test(l));
        if (seen !== undefined) return resolve(seen);
        const listener = (_stream: Stream, line: string) => {
          if (!pattern.test(line)) return;
          done();
          resolve(line);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${keepOutput ? text : lastLines.join('\n')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(listener);
        };
        listeners.add(listener);
        void closed.then(() => {
          if (!listeners.has(listener)) return;
          done();
          reject(new Error(`process exited before printing ${pattern}; output:\n${keepOutput ? text : lastLines.join('\n')}`));
        });
      });
    },
  };
}
