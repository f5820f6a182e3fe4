import type { Stream } from '../process/line-process.ts';

/** What a fleet process warned about while a bench ran. */
export interface WarningCounts {
  warnings: number;
  readonly warningKinds: Map<string, number>;
}

/**
 * Counts a process's output line if it is a warning (stderr, or a pino line at level 40 or
 * above), under its kind.
 */
export function countWarning(counts: WarningCounts, stream: Stream, line: string): void {
  const level = /"level":(\d+)/.exec(line)?.[1];
  if (stream !== 'err' && (level === undefined || Number(level) < 40)) return;
  counts.warnings += 1;
  const kind = warningKind(line);
  counts.warningKinds.set(kind, (counts.warningKinds.get(kind) ?? 0) + 1);
}

/**
 * What a warning is about: its msg, the job's name if the line has one, and its error's own text
 * (knex puts the SQL first, then " - " and MySQL's message), numbers blanked so one cause counts once.
 */
export function warningKind(line: string): string {
  try {
    // pino's own "name" (the process) comes first; a job's name, logged after it, wins the parse.
    const entry = JSON.parse(line) as { msg?: unknown; name?: unknown; err?: { message?: unknown } };
    const errText = typeof entry.err?.message === 'string' ? (entry.err.message.split(' - ').at(-1) ?? '') : '';
    const job = typeof entry.name === 'string' && entry.name.includes('.') ? ` [${entry.name}]` : '';
    return `${String(entry.msg ?? '')}${job}${errText ? `: ${errText}` : ''}`.replace(/\d+/g, '#').slice(0, 160);
  } catch {
    return line.replace(/\d+/g, '#').slice(0, 160);
  }
}
