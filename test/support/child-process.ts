import type { ChildProcess } from 'node:child_process';
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
export function runTsx(file: string, args: string[], env: Record<string, string>): Child {
  const child = spawnLines(process.execPath, nodeArgsFor(file, args), { cwd: ROOT, env: { ...process.env, ...env } });
  return {
    process: child.process,
    output: child.output,
    waitForLine: child.waitForLine,
    exited: child.exited,
    kill: () => child.signal('SIGKILL'),
  };
}
