/**
 * The PASS/FAIL table of a bench against its targets: each target, what was measured, and the
 * verdict (n/a when the run could not tell). Printed, written into the JSON and into the Markdown.
 */
import { log, printTable } from './log.ts';

export type Verdict = 'PASS' | 'FAIL' | 'n/a';

export interface TargetResult {
  readonly target: string;
  readonly measured: string;
  readonly verdict: Verdict;
}

export class Targets {
  readonly results: TargetResult[] = [];

  /** pass: true, false, or null when the run cannot tell. */
  add(target: string, measured: string, pass: boolean | null): Verdict {
    const verdict: Verdict = pass === null ? 'n/a' : pass ? 'PASS' : 'FAIL';
    this.results.push({ target, measured, verdict });
    return verdict;
  }

  print(): void {
    log('');
    printTable(['target', 'verdict', 'measured'], this.results.map((r) => [r.target, r.verdict, r.measured]));
  }

  markdown(): string {
    const cell = (s: string) => s.replace(/\|/g, '\\|');
    return ['| target | measured | verdict |', '|---|---|---|', ...this.results.map((r) => `| ${cell(r.target)} | ${cell(r.measured)} | **${r.verdict}** |`)].join('\n');
  }
}
