import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's prometheus package puts it here (scripts/setup.sh --promtool installs it). */
export const PROMTOOL = '/usr/bin/promtool';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly samples: readonly Sample[];
}

/** The families of a Prometheus text exposition, each with its samples (a histogram's _bucket, _sum and _count included). */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, { name: string; type: string; samples: Sample[] }>();
  for (const line of text.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typed) {
      families.set(typed[1]!, { name: typed[1]!, type: typed[2]!, samples: [] });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const [, name, labelText, value] = sample;
    const labels = Object.fromEntries([...(labelText ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    const family = families.get(name!) ?? families.get(name!.replace(/_(bucket|sum|count)$/, ''));
    if (!family) throw new Error(`a sample of no declared family: ${line}`);
    family.samples.push({ name: name!, labels, value: Number(value) });
  }
  return families;
}

/** The sum of a family's samples named `name` whose labels include `labels`. */
export function valueOf(families: ReadonlyMap<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
  return (family?.samples ?? [])
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** Whether something set the family: a gauge has a sample, a counter a non-zero one, a histogram a non-zero count. */
export function wasSet(family: Family): boolean {
  if (family.type === 'gauge') return family.samples.length > 0;
  if (family.type === 'histogram') return family.samples.some((sample) => sample.name.endsWith('_count') && sample.value > 0);
  return family.samples.some((sample) => sample.value > 0);
}

/** `promtool check metrics` on the text: its exit code and what it said (problems are listed one a line). */
export function promtoolCheck(text: string): { readonly code: number | null; readonly output: string } {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: run "bash scripts/setup.sh --promtool" as root (Debian's prometheus package)`);
  const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}
