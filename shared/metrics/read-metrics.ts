import { Counter, type Registry } from 'prom-client';
import type { ReadSource, RefreshOutcome } from '../cache/order-reader.ts';

const SOURCES: readonly ReadSource[] = ['l1', 'l2', 'mysql'];
const REFRESH_OUTCOMES: readonly RefreshOutcome[] = ['kept', 'replaced', 'failed'];

/**
 * Order reads by where they were answered from, in the process that serves them (the web): the
 * L1 hit ratio is rate(l1) / rate(all), L2's rate(l2) / rate(l2 + mysql). Every source starts at
 * 0, so the ratios exist before the first miss. A hot copy's refresh ahead of its TTL is not a read
 * (no request waited on it): it is counted on its own, by what L2 answered.
 */
export function createReadMetrics(registry: Registry) {
  // Counted in memory and added to the counter when it is read (prom-client calls collect() on
  // every scrape): an L1 hit, every cached read, costs an increment rather than a labelled update.
  const uncollected: Record<ReadSource, number> = { l1: 0, l2: 0, mysql: 0 };
  const orderReads = new Counter({
    name: 'courier_order_reads_total',
    help: 'Order reads by where they were answered from (l1, l2, mysql)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      for (const source of SOURCES) {
        if (uncollected[source] === 0) continue;
        this.inc({ source }, uncollected[source]);
        uncollected[source] = 0;
      }
    },
  });
  for (const source of SOURCES) orderReads.inc({ source }, 0);
  const countRead = (source: ReadSource): void => {
    uncollected[source] += 1;
  };
  const l1Refreshes = new Counter({
    name: 'courier_order_l1_refreshes_total',
    help: "Refreshes of hot L1 copies ahead of their TTL, by outcome (kept: L2 still held that version; replaced; failed)",
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of REFRESH_OUTCOMES) l1Refreshes.inc({ outcome }, 0);
  return { orderReads, countRead, l1Refreshes };
}

export type ReadMetrics = ReturnType<typeof createReadMetrics>;
