/** The pipeline bench's report: the step table, round trips at the sustainable rate, the targets; printed and as Markdown. */
import { fmt, log, printTable } from '../lib/log.ts';
import type { Targets } from '../lib/targets.ts';
import { CHART_FILES } from './charts.ts';
import type { Check } from './checks.ts';
import type { StepFigures } from './step-figures.ts';
import type { StepRecord } from './steps.ts';

const ms = (v: number) => (Number.isFinite(v) ? fmt(v) : 'never');
const mb = (bytes: number) => `${bytes >= 0 ? '+' : '-'}${fmt(Math.abs(bytes) / 1024 / 1024, 1)}`;

function stepRows(steps: readonly StepRecord[], figures: readonly StepFigures[]): string[][] {
  return figures.map((f, i) => {
    const s = steps[i]!;
    return [
      fmt(f.rate),
      fmt(f.acceptedPerSec),
      fmt(f.dispatchedPerSec),
      `${ms(f.latencyMs.p50)} / ${ms(f.latencyMs.p99)}`,
      `${fmt(s.backlog.ordersStart)} -> ${fmt(s.backlog.ordersEnd)}`,
      `${fmt(s.backlog.notificationsStart)} -> ${fmt(s.backlog.notificationsEnd)}`,
      fmt(f.cpuMsPerOrder, 2),
      mb(f.redisGrowthBytes),
      f.sustainable ? 'yes' : 'no',
    ];
  });
}

const STEP_HEADER = ['offered/s', 'accepted/s', 'dispatched/s', 'p50 / p99 ms', 'open orders', 'notifications owed', 'CPU ms/order', 'Redis MB', 'sustainable'];

function cpuRows(figures: readonly StepFigures[]): { header: string[]; rows: string[][] } {
  const names = [...new Set(figures.flatMap((f) => Object.keys(f.cpuUsPerOrder)))];
  return { header: ['offered/s', ...names.map((n) => `${n} µs`)], rows: figures.map((f) => [fmt(f.rate), ...names.map((n) => fmt(f.cpuUsPerOrder[n]))]) };
}

function roundTripLines(f: StepFigures): string[] {
  const rt = f.roundTrips;
  const kinds = Object.entries(rt.mysqlByKind).filter(([, v]) => v > 0.005).map(([k, v]) => `${k.replace('Com_', '')} ${fmt(v, 2)}`);
  return [
    `MySQL statements: ${fmt(rt.mysqlStatements, 2)} per order (${kinds.join(', ')}; MariaDB's global counters, so an upper bound on a shared server)`,
    `Redis commands: ${fmt(rt.redisCommands, 2)} per order (${Object.entries(rt.redisTopCommands).map(([c, v]) => `${c} ${fmt(v, 2)}`).join(', ')})`,
    `BullMQ jobs added: ${fmt(rt.jobsAdded, 3)} per order (${Object.entries(rt.jobsAddedByQueue).map(([q, v]) => `${q} ${fmt(v, 3)}`).join(', ')})`,
    `provider calls: ${fmt(rt.providerCalls, 2)} per order`,
  ];
}

export function printReport(steps: readonly StepRecord[], figures: readonly StepFigures[], sustainable: StepFigures | null, checks: readonly Check[], targets: Targets): void {
  log('\n== the steps (latency from MySQL timestamps; an order never dispatched counts as slower than any)');
  printTable(STEP_HEADER, stepRows(steps, figures));
  log('\n== CPU per dispatched order, by process (µs)');
  const cpu = cpuRows(figures);
  printTable(cpu.header, cpu.rows);
  log(`\n== round trips per order at ${sustainable ? `the sustainable rate (${fmt(sustainable.rate)}/s)` : 'the first step (none was sustainable)'}`);
  const at = sustainable ?? figures[0];
  if (at) for (const line of roundTripLines(at)) log(`  ${line}`);
  log('\n== exactly once');
  for (const c of checks) log(`  ${c.ok ? 'ok    ' : 'FAILED'} ${c.check}: ${c.found}`);
  targets.print();
}

export function reportMarkdown(opts: {
  heading: string;
  settingsLine: string;
  steps: readonly StepRecord[];
  figures: readonly StepFigures[];
  sustainable: StepFigures | null;
  checks: readonly Check[];
  targets: Targets;
  notes: readonly string[];
}): string {
  const table = (header: readonly string[], rows: readonly (readonly string[])[]) =>
    [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const cpu = cpuRows(opts.figures);
  const at = opts.sustainable ?? opts.figures[0];
  return [
    opts.heading,
    '',
    `\`npm run bench:pipeline\`: ${opts.settingsLine}`,
    '',
    opts.targets.markdown(),
    '',
    `![capacity curve](results/${CHART_FILES.capacity})`,
    '',
    table(STEP_HEADER, stepRows(opts.steps, opts.figures)),
    '',
    `Round trips per order at ${opts.sustainable ? `the sustainable rate (${fmt(opts.sustainable.rate)}/s)` : 'the first step (none was sustainable)'}:`,
    '',
    ...(at ? roundTripLines(at).map((l) => `- ${l}`) : []),
    '',
    `![CPU per order by process](results/${CHART_FILES.cpu})`,
    '',
    table(cpu.header, cpu.rows),
    '',
    'Exactly once:',
    '',
    ...opts.checks.map((c) => `- ${c.ok ? 'ok' : '**FAILED**'}: ${c.check}: ${c.found}`),
    ...(opts.notes.length ? ['', ...opts.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
}
