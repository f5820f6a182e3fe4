import { Counter, type Registry } from 'prom-client';
import type { ReadSource } from '../cache/order-reader.ts';

const SOURCES: readonly ReadSource[] = ['l1', 'l2', 'mysql'];

/**
 * Order reads by where they were answered from, in the process that serves them (the web): the
 * L1 hit ratio is rate(l1) / rate(all), L2's rate(l2) / rate(l2 + mysql). Every source starts at
 * 0, so the ratios exist before the first miss.
 */
export function createReadMetrics(registry: Registry) {
  const orderReads = new Counter({
    name: 'courier_order_reads_total',
    help: 'Order reads by where they were answered from (l1, l2, mysql)',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  for (const source of SOURCES) orderReads.inc({ source }, 0);
  return { orderReads };
}

export type ReadMetrics = ReturnType<typeof createReadMetrics>;
