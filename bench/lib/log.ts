/**
 * The benches' output: log lines, a progress line that a terminal rewrites in place, number
 * formatting and plain-text tables.
 */

export const isTty = process.stdout.isTTY === true;
let statusLineOpen = false;

export function log(message: string): void {
  if (statusLineOpen) {
    process.stdout.write('\n');
    statusLineOpen = false;
  }
  console.log(message);
}

/** A progress line: rewritten in place on a terminal, printed every few seconds otherwise. */
export function progress(message: string, force: boolean): void {
  if (isTty) {
    process.stdout.write(`\r\x1b[K${message}`);
    statusLineOpen = true;
  } else if (force) {
    console.log(message);
  }
}

/** A number with thousands separators and a fixed number of decimals; 'n/a' for none, NaN or an infinity. */
export const fmt = (n: number | null | undefined, digits = 0) =>
  n !== null && n !== undefined && Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[], indent = '  '): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => indent + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  log(line(header));
  for (const r of rows) log(line(r));
}
