import type { ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { nodeArgsFor, ROOT, spawnLines } from '../../bench/lib/process/line-process.ts';

export { ROOT };

export interface Child {
  readonly process: ChildProcess;
  output(): string;
  /** Resolves with the first output line matching the pattern; rejects if the process exits first or the bound passes. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/**
 * Runs one of our TypeScript entrypoints as one real process, the way the Procfile does: `node <file>`
 * on the Node running the tests (Node 24 strips the types itself), with no wrapper process between.
 * The same helper as the benches' (bench/lib/process/line-process.ts).
 */
export function runScript(file: string, args: string[], env: Record<string, string>): Child {
  const child = spawnLines(process.execPath, nodeArgsFor(file, args), { cwd: ROOT, env: { ...process.env, ...env } });
  // Node may report the exit before the last of the output is read: a test that reads the output
  // once the process exited waits for its pipes to close too (briefly: a grandchild could hold them).
  const closed = new Promise<void>((resolve) => child.process.once('close', () => resolve()));
  const exited = child.exited.then(async (exit) => {
    await Promise.race([closed, delay(2000, undefined, { ref: false })]);
    return exit;
  });
  return {
    process: child.process,
    output: child.output,
    waitForLine: child.waitForLine,
    exited,
    kill: () => child.signal('SIGKILL'),
  };
}
