/**
 * A bench summary as JSON with its time series as a compact table: the summary pretty-printed,
 * the series as { columns, rows } with one row per line, so a results file stays small and readable
 * in a diff (a series of nested objects pretty-printed takes a line per number).
 */

export interface SeriesTable {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (number | string | null)[])[];
}

/** Numbers rounded to 2 decimals; infinities and NaN as strings (JSON has neither). */
export function roundForJson(_key: string, value: unknown): unknown {
  if (typeof value !== 'number') return value;
  if (!Number.isFinite(value)) return String(value);
  return Number.isInteger(value) ? value : Math.round(value * 100) / 100;
}

export function summaryWithSeriesJson(summary: Record<string, unknown>, key: string, table: SeriesTable): string {
  const placeholder = `__${key.toUpperCase()}_TABLE__`;
  const head = JSON.stringify({ ...summary, [key]: placeholder }, roundForJson, 2);
  const rows = table.rows.map((row) => `      ${JSON.stringify(row, roundForJson)}`).join(',\n');
  const body = `{\n    "columns": ${JSON.stringify(table.columns)},\n    "rows": [\n${rows}\n    ]\n  }`;
  return `${head.replace(`"${placeholder}"`, body)}\n`;
}
