import type { Registry } from 'prom-client';
import { createBreakerMetrics } from './breaker-metrics.ts';
import { createEdgeMetrics } from './edge-metrics.ts';
import { createHttpMetrics } from './http-metrics.ts';
import { createIntakeMetrics } from './intake-metrics.ts';
import { createLockMetrics } from './lock-metrics.ts';
import { createMaintenanceMetrics } from './maintenance-metrics.ts';
import { createPoolMetrics } from './pool-metrics.ts';
import { createQueueMetrics } from './queue-metrics.ts';
import { createReadMetrics } from './read-metrics.ts';
import { createRegistry } from './registry.ts';
import { createStageMetrics, createOrderLatencyMetrics } from './stage-metrics.ts';
import { createSwitchMetrics } from './switch-metrics.ts';
import { createTickMetrics } from './tick-metrics.ts';

/**
 * Each process's metric set: only the concerns it sets, on a registry of its own. Adding a metric
 * to a process means adding its concern here, where the process that sets it is wired.
 */
export interface MetricsOptions {
  /** Node's own (CPU, memory, event loop, GC): the entrypoints; tests leave them out. */
  readonly defaultMetrics?: boolean;
  /** The `process` label on every sample; default the process's name. */
  readonly processName?: string;
}

/** How long a scrape waits for a queue's counts before leaving them out. */
export interface QueueCountOptions {
  readonly queueCountTimeoutMs?: number;
  readonly onQueueCountFailed?: (queue: string, error: unknown) => void;
}

function registryFor(name: string, opts: MetricsOptions): Registry {
  return createRegistry({ processName: opts.processName ?? name, defaultMetrics: opts.defaultMetrics ?? false });
}

const queueOptions = (opts: QueueCountOptions) => ({
  timeoutMs: opts.queueCountTimeoutMs ?? 1000,
  ...(opts.onQueueCountFailed ? { onCountFailed: opts.onQueueCountFailed } : {}),
});

/** web: the intake, its requests and edge, order reads (L1/L2/MySQL), the order locks of rider events, switches. */
export function createWebMetrics(opts: MetricsOptions = {}) {
  const registry = registryFor('web', opts);
  return {
    registry,
    ...createIntakeMetrics(registry),
    ...createHttpMetrics(registry),
    ...createReadMetrics(registry),
    ...createLockMetrics(registry, ['order']),
    ...createSwitchMetrics(registry),
    edge: createEdgeMetrics(registry),
  };
}

/** worker: its queues (orders, dispatch, maintenance), the price and dispatch stages, order latencies, CPU pools, locks, maintenance, switches. */
export function createWorkerMetrics(opts: MetricsOptions & QueueCountOptions = {}) {
  const registry = registryFor('worker', opts);
  return {
    registry,
    ...createQueueMetrics(registry, queueOptions(opts)),
    ...createStageMetrics(registry),
    ...createOrderLatencyMetrics(registry),
    ...createPoolMetrics(registry),
    ...createLockMetrics(registry, ['order', 'zone']),
    ...createMaintenanceMetrics(registry),
    ...createSwitchMetrics(registry),
  };
}

/** notifier: its queue (notifications), the notify stage, the provider's breaker, switches. */
export function createNotifierMetrics(opts: MetricsOptions & QueueCountOptions = {}) {
  const registry = registryFor('notifier', opts);
  return {
    registry,
    ...createQueueMetrics(registry, queueOptions(opts)),
    ...createStageMetrics(registry),
    ...createBreakerMetrics(registry),
    ...createSwitchMetrics(registry),
  };
}

/** scheduler: its ticks and the switches (warm-up). */
export function createSchedulerMetrics(opts: MetricsOptions = {}) {
  const registry = registryFor('scheduler', opts);
  return { registry, ...createTickMetrics(registry), ...createSwitchMetrics(registry) };
}

export type WebMetrics = ReturnType<typeof createWebMetrics>;
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>;
export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
/** What /metrics serves: any process's set. */
export interface ProcessMetrics {
  readonly registry: Registry;
}
