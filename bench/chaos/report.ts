/**
 * The chaos run's report: one row per scenario (printed, and in bench/CHAOS.md for the full run),
 * then each scenario's checks and notes, then the reasons of any failure.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, log, printTable } from '../lib/log.ts';
import { ROOT } from '../lib/process/line-process.ts';
import type { ScenarioResult } from './scenario.ts';

export const CHAOS_MD = join(ROOT, 'bench', 'CHAOS.md');

export const HEADER = ['scenario', 'accepted', 'final/escalated', 'lost', 'dup riders/notif', 'right codes', 'recover s', 'p99 in fault ms', 'verdict'];

function cells(r: ScenarioResult): string[] {
  return [
    `${r.key}: ${r.title}`,
    fmt(r.accepted),
    fmt(r.settled),
    fmt(r.lost),
    `${fmt(r.dupRiders)} / ${fmt(r.dupNotifications)}`,
    r.rightCodes.total === 0 ? '-' : `${fmt(r.rightCodes.right)}/${fmt(r.rightCodes.total)}`,
    r.recoverS === undefined ? 'n/a' : r.recoverS === null ? 'never' : fmt(r.recoverS, 1),
    r.answersInFault ? fmt(r.p99FaultMs) : 'n/a',
    r.passed ? 'PASS' : 'FAIL',
  ];
}

/** Every failed check, as "<scenario>: <check>: <found>". */
export function failures(results: readonly ScenarioResult[]): string[] {
  return results.flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `${r.key}: ${c.check}: ${c.found}`));
}

export function printReport(results: readonly ScenarioResult[], verbose: boolean): void {
  if (verbose) {
    for (const r of results) {
      log(`\n== ${r.key}: ${r.title} (${fmt(r.seconds, 1)} s)`);
      for (const n of r.notes) log(`  ${n}`);
      for (const c of r.checks) log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.found}`);
    }
  }
  log('');
  printTable(HEADER, results.map(cells));
}

export interface ReportHead {
  readonly heading: string;
  readonly settingsLine: string;
  readonly fleetSettings: Record<string, string>;
}

export function writeChaosMd(head: ReportHead, results: readonly ScenarioResult[]): void {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const table = [`| ${HEADER.join(' | ')} |`, `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...results.map((r) => `| ${cells(r).map(cell).join(' | ')} |`)];
  const details = results.flatMap((r) => [
    '',
    `### ${r.key}: ${r.title} (${fmt(r.seconds, 1)} s)`,
    '',
    ...r.notes.map((n) => `- ${n}`),
    ...r.checks.map((c) => `- ${c.ok ? 'ok' : '**FAIL**'}: ${c.check}: ${c.found}`),
  ]);
  const failed = failures(results);
  const text = [
    '# Chaos results',
    '',
    '`npm run chaos` starts the Procfile fleet (web, two workers, notifier, scheduler, the dev provider) on a MariaDB',
    'and a Redis of its own, sends orders at a steady rate, and runs each scenario in turn; each ends with a check of',
    'every order it accepted, in MySQL and at the provider. `npm run chaos -- --quick` is the short run `npm test`',
    'runs; only the full run (`npm run chaos`, any settings) rewrites this file. What each column means is in',
    '[docs/testing.md](../docs/testing.md#chaos-the-invariants-shown).',
    '',
    head.heading,
    '',
    head.settingsLine,
    '',
    `The fleet's settings for the run (the environment may set others): ${Object.entries(head.fleetSettings).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`,
    '',
    ...table,
    '',
    failed.length ? `**${failed.length} checks failed:**\n\n${failed.map((f) => `- ${f}`).join('\n')}` : 'Every check passed.',
    '',
    '## Each scenario',
    ...details,
    '',
  ].join('\n');
  writeFileSync(CHAOS_MD, text);
  log(`results: bench/CHAOS.md`);
}
