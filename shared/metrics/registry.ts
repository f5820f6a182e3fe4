import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per process (never prom-client's global one, so tests can build many processes'
 * metric sets side by side). Each process registers on it only the concerns it sets
 * (./process-metrics.ts); every sample carries the process's name.
 */
export function createRegistry(opts: { processName?: string; defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.processName) registry.setDefaultLabels({ process: opts.processName });
  if (opts.defaultMetrics) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters (promtool refuses them); each is the sum of its by-type family, kept.
    for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  }
  return registry;
}

const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Buckets of a latency in seconds, from a millisecond to ten minutes (a re-driven order's steps take minutes). */
export const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** Buckets of a batch's size (orders or notifications per batch). */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
