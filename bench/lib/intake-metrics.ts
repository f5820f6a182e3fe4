/** Courier's intake batches, as its web process's /metrics counts them. */

export interface IntakeMetrics {
  batches: number;
  orders: number;
  commitSeconds: number;
}

export interface IntakeBatches {
  batches: number;
  avgOrdersPerBatch: number;
  avgCommitMs: number;
}

/** Courier's intake batch histograms from its /metrics (cumulative since it started); null when it cannot tell. */
export async function scrapeIntakeMetrics(baseUrl: string): Promise<IntakeMetrics | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return null;
    const text = await response.text();
    const value = (metric: string) => {
      const match = new RegExp(`^${metric}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
      return match?.[1] === undefined ? 0 : Number(match[1]);
    };
    return {
      batches: value('courier_intake_batch_size_count'),
      orders: value('courier_intake_batch_size_sum'),
      commitSeconds: value('courier_intake_batch_seconds_sum'),
    };
  } catch {
    return null;
  }
}

/** The batches between two scrapes: how many, their mean size and commit time (null when none or unknown). */
export function intakeBatchesBetween(before: IntakeMetrics | null, after: IntakeMetrics | null): IntakeBatches | null {
  if (!before || !after || !(after.batches > before.batches)) return null;
  const batches = after.batches - before.batches;
  return {
    batches,
    avgOrdersPerBatch: (after.orders - before.orders) / batches,
    avgCommitMs: ((after.commitSeconds - before.commitSeconds) * 1000) / batches,
  };
}
