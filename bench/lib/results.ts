/**
 * A bench's results: bench/results/<bench>-latest.json (the whole summary, its time series as a
 * compact table) and a Markdown section, which goes into bench/RESULTS.md between its "latest"
 * markers, the newest figures on top. A full run (every setting at its default) also keeps a dated
 * copy of its JSON, and the section it replaces moves to the top of the history below the markers;
 * a check run (any setting changed) only replaces the previous check run's section.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { log } from './log.ts';
import { ROOT } from './process/line-process.ts';
import { roundForJson, summaryWithSeriesJson, type SeriesTable } from './series-json.ts';

export const RESULTS_DIR = join(ROOT, 'bench', 'results');
const RESULTS_MD = join(ROOT, 'bench', 'RESULTS.md');
/** The order of the sections in RESULTS.md. */
const BENCHES = ['intake', 'pipeline', 'reads', 'recovery', 'logs'] as const;
const LATEST_BEGIN = '<!-- latest: begin (written by the benches, bench/lib/results.ts; edit below the history marker instead) -->';
const LATEST_END = '<!-- latest: end -->';
const HISTORY_BEGIN = '<!-- history: begin -->';
const FULL_RUN = '<!-- full run -->';

/** The first fields of every summary: which bench, when, on what, and which settings were changed. */
export function summaryHead(bench: string, changed: readonly string[]) {
  return {
    bench,
    finishedAt: new Date().toISOString(),
    run: changed.length === 0 ? 'full run (every setting at its default)' : `check run (${changed.join(' ')})`,
    settingsChanged: changed,
    environment: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', platform: process.platform },
  };
}

/** The heading line of a bench's Markdown section: what ran, when, and whether it was a full run. */
export function sectionHeading(title: string, changed: readonly string[]): string {
  const when = new Date().toISOString().replace(/:\d\d\.\d+Z$/, ' UTC').replace('T', ' ');
  return changed.length === 0
    ? `${FULL_RUN}\n### ${title}, ${when}: full run with the defaults`
    : `### ${title}, ${when}: check run (\`${changed.join(' ')}\`), not a measurement`;
}

export interface BenchResults {
  readonly bench: (typeof BENCHES)[number];
  readonly summary: Record<string, unknown>;
  /** A time series written as a compact table under this key. */
  readonly series?: { readonly key: string; readonly table: SeriesTable };
  readonly markdown: string;
  readonly fullRun: boolean;
}

export function writeResults(results: BenchResults): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = results.series
    ? summaryWithSeriesJson(results.summary, results.series.key, results.series.table)
    : `${JSON.stringify(results.summary, roundForJson, 2)}\n`;
  const latest = join(RESULTS_DIR, `${results.bench}-latest.json`);
  writeFileSync(latest, json);
  if (results.fullRun) {
    const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    writeFileSync(join(RESULTS_DIR, `${results.bench}-${stamp}.json`), json);
  }
  const sectionFile = join(RESULTS_DIR, `${results.bench}-latest.md`);
  const previous = existsSync(sectionFile) ? readFileSync(sectionFile, 'utf8') : null;
  writeFileSync(sectionFile, `${results.markdown.trim()}\n`);
  rewriteResultsMd(previous !== null && previous.startsWith(FULL_RUN) && results.fullRun ? previous : null);
  log(`results: ${latest.slice(ROOT.length + 1)}, ${sectionFile.slice(ROOT.length + 1)} and bench/RESULTS.md`);
}

/** Puts every bench's latest section between the markers; a replaced full-run section goes on top of the history. */
export function rewriteResultsMd(toHistory: string | null = null): void {
  const text = readFileSync(RESULTS_MD, 'utf8');
  const begin = text.indexOf(LATEST_BEGIN);
  const end = text.indexOf(LATEST_END);
  if (begin < 0 || end < begin) throw new Error(`bench/RESULTS.md has lost its markers (${LATEST_BEGIN} ... ${LATEST_END})`);
  const sections = BENCHES.map((b) => join(RESULTS_DIR, `${b}-latest.md`))
    .filter((file) => existsSync(file))
    .map((file) => readFileSync(file, 'utf8').trim());
  let rest = text.slice(end);
  if (toHistory) {
    const at = rest.indexOf(HISTORY_BEGIN);
    if (at >= 0) {
      const cut = at + HISTORY_BEGIN.length;
      rest = `${rest.slice(0, cut)}\n\n${toHistory.replace(FULL_RUN, '').trim()}\n${rest.slice(cut)}`;
    }
  }
  writeFileSync(RESULTS_MD, `${text.slice(0, begin)}${LATEST_BEGIN}\n\n${sections.join('\n\n')}\n\n${rest}`);
}
