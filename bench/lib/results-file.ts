/** The summary each bench leaves in bench/results/<bench>-latest.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './child-processes.ts';
import { log } from './log.ts';

/** The first fields of every summary: which bench, when, and on what. */
export function summaryHead(bench: string) {
  return {
    bench,
    finishedAt: new Date().toISOString(),
    environment: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', platform: process.platform },
  };
}

/** Writes bench/results/<bench>-latest.json (the text as given) and says so. */
export function writeResultsFile(bench: string, text: string): void {
  const file = join(ROOT, 'bench', 'results', `${bench}-latest.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  log(`summary written to ${file.slice(ROOT.length + 1)}`);
}
