/** An API client as an operator sees it (never its key: only the prefix shown at creation). */
export interface ApiClientRow {
  readonly id: string;
  readonly name: string;
  readonly keyPrefix: string;
  readonly createdAt: Date;
  /** Written by the web processes at most once a minute per key; null if never used since it was recorded. */
  readonly lastUsedAt: Date | null;
  /** Its own rate in requests per second; null: RATE_LIMIT_PER_SECOND. */
  readonly ratePerSecond: number | null;
  readonly revokedAt: Date | null;
}

export const CLIENT_COLUMNS = ['id', 'name', 'key_prefix', 'created_at', 'last_used_at', 'rate_per_second', 'revoked_at'] as const;

export function toClientRow(row: Record<(typeof CLIENT_COLUMNS)[number], unknown>): ApiClientRow {
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return {
    id: String(row.id),
    name: String(row.name),
    keyPrefix: String(row.key_prefix),
    createdAt: new Date(row.created_at as string),
    lastUsedAt: date(row.last_used_at),
    ratePerSecond: row.rate_per_second === null ? null : Number(row.rate_per_second),
    revokedAt: date(row.revoked_at),
  };
}
