/**
 * Counts what each fleet process logs, by level: lines, bytes, the longest line, and the info lines
 * by kind (their message with numbers blanked), so a volume figure says where it comes from.
 */
import type { Stream } from '../lib/process/line-process.ts';

export interface ProcessLines {
  lines: number;
  info: number;
  /** warn and above, and stderr. */
  warnings: number;
  debug: number;
  infoBytes: number;
  longestInfoBytes: number;
  readonly infoKinds: Map<string, number>;
}

const INFO = 30;
const WARN = 40;

export class LineCounter {
  readonly byProcess = new Map<string, ProcessLines>();

  /** Counts one output line of a process (`worker.2` counts under `worker.2`). */
  count(process: string, stream: Stream, line: string): void {
    const counts = this.of(process);
    counts.lines += 1;
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? Number.NaN);
    if (stream === 'err' || level >= WARN) counts.warnings += 1;
    else if (level === INFO) {
      const bytes = Buffer.byteLength(line) + 1;
      counts.info += 1;
      counts.infoBytes += bytes;
      counts.longestInfoBytes = Math.max(counts.longestInfoBytes, bytes);
      const kind = infoKind(line);
      counts.infoKinds.set(kind, (counts.infoKinds.get(kind) ?? 0) + 1);
    } else if (level < INFO) counts.debug += 1;
  }

  /** Every process's counts added up. */
  total(): ProcessLines {
    const total = emptyCounts();
    for (const counts of this.byProcess.values()) {
      total.lines += counts.lines;
      total.info += counts.info;
      total.warnings += counts.warnings;
      total.debug += counts.debug;
      total.infoBytes += counts.infoBytes;
      total.longestInfoBytes = Math.max(total.longestInfoBytes, counts.longestInfoBytes);
      for (const [kind, n] of counts.infoKinds) total.infoKinds.set(kind, (total.infoKinds.get(kind) ?? 0) + n);
    }
    return total;
  }

  private of(process: string): ProcessLines {
    let counts = this.byProcess.get(process);
    if (!counts) this.byProcess.set(process, (counts = emptyCounts()));
    return counts;
  }
}

function emptyCounts(): ProcessLines {
  return { lines: 0, info: 0, warnings: 0, debug: 0, infoBytes: 0, longestInfoBytes: 0, infoKinds: new Map() };
}

/** An info line's kind: its message up to the first colon, numbers blanked. */
function infoKind(line: string): string {
  try {
    const msg = String((JSON.parse(line) as { msg?: unknown }).msg ?? '');
    return msg.split(':')[0]!.replace(/\d+/g, '#').slice(0, 80);
  } catch {
    return '(not JSON)';
  }
}
