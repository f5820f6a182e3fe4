/**
 * The fleet's commands, read from the Procfile, so the benches run the processes exactly as
 * production does and a change there (say `node workers/web.ts` without a loader) needs no bench
 * change. The dev provider is not a Procfile line (production talks to a real provider): it runs
 * as the web line does, with its own entry file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../process/line-process.ts';

export interface ProcfileLine {
  readonly name: string;
  readonly command: string;
}

export const DEV_PROVIDER = 'provider';

export function readProcfile(): ProcfileLine[] {
  return readFileSync(join(ROOT, 'Procfile'), 'utf8')
    .split('\n')
    .map((line) => /^([\w-]+):\s*(.+?)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1]!, command: m[2]! }));
}

/** Every Procfile line and the dev provider's, by name. */
export function fleetCommands(): Map<string, string> {
  const lines = readProcfile();
  const commands = new Map(lines.map((l) => [l.name, l.command]));
  const web = commands.get('web');
  if (!web || !web.includes('workers/web.ts')) throw new Error('the Procfile has no web line running workers/web.ts: the dev provider runs as it does');
  commands.set(DEV_PROVIDER, web.replace('workers/web.ts', 'workers/dev-provider.ts'));
  return commands;
}

/** The port variables a line reads with a default, e.g. WORKER_METRICS_PORT in METRICS_PORT=${WORKER_METRICS_PORT:-9101}. */
export function metricsPortVariable(command: string): string | null {
  return /\$\{(\w*METRICS_PORT):-\d+\}/.exec(command)?.[1] ?? null;
}
