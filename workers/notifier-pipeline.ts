import type { Worker } from 'bullmq';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { BreakerStateName } from '../shared/metrics/breaker-metrics.ts';
import type { NotifierMetrics } from '../shared/metrics/process-metrics.ts';
import { ProviderClient, type ProviderClientOptions } from '../shared/notifications/provider-client.ts';
import { notificationBackoff } from '../shared/notifications/retry-policy.ts';
import { openSwitches, type Switches } from '../shared/switches/switches.ts';
import { startQueueWorker } from './queue-worker.ts';
import type { WorkerHold } from './supervised-worker.ts';

export interface Notifier {
  readonly worker: Worker;
  /** The provider client every job of this process shares, with its circuit breaker. */
  readonly provider: ProviderClient;
  /** The degradation switches as this process reads them (notifications). */
  readonly switches: Switches;
  /** Stops taking jobs, waits for the ones in flight, then closes the breaker and every connection. */
  close(): Promise<void>;
}

/**
 * The notifier of one process: a worker on the notifications queue, separate from the order
 * pipeline and with its own concurrency, so a flood of notifications (or a provider outage) never
 * slows pricing or dispatch. A job carries a batch; every job goes through one provider client, so
 * they share one circuit breaker; while it is open, jobs wait for it without spending attempts.
 */
export async function startNotifier(
  config: Config,
  logger: Logger,
  opts: { provider?: ProviderClientOptions; metrics?: NotifierMetrics } = {},
): Promise<Notifier> {
  const { metrics } = opts;
  const db = createDb(config, { logger, statementTimeoutMs: config.dbStatementTimeoutMs });
  const switches = openSwitches(config, { logger, ...(metrics ? { metrics } : {}) });
  const provider = new ProviderClient(config, { connections: config.notifierConcurrency * 2, ...opts.provider });
  const transition = metrics?.trackBreaker('notify-provider', () => BREAKER_STATE[provider.state]);
  provider.onStateChange((state) => {
    transition?.(BREAKER_STATE[state]);
    const fields = { breaker: state, stats: provider.stats, provider: config.notifyProviderUrl };
    if (state === 'closed') logger.info(fields, 'notification provider breaker closed: sending again');
    else if (state === 'open') logger.warn({ ...fields, retryInMs: provider.retryAfterMs() }, 'notification provider breaker opened: failing fast');
    else logger.info(fields, 'notification provider breaker half-open: trying one call');
  });
  const running = startQueueWorker({
    queue: 'notifications',
    services: { db, provider, ...(metrics ? { metrics } : {}) },
    concurrency: config.notifierConcurrency,
    config,
    logger,
    // Exponential with jitter, never sooner than the breaker lets a call through again.
    settings: { backoffStrategy: notificationBackoff },
    hold: notificationsHold(switches),
    ...(metrics ? { metrics } : {}),
  });
  return {
    get worker() {
      return running.worker;
    },
    provider,
    switches,
    async close() {
      await running.close();
      await switches.close();
      await provider.close();
      await db.destroy();
    },
  };
}

const BREAKER_STATE: Record<ProviderClient['state'], BreakerStateName> = { closed: 'closed', halfOpen: 'half_open', open: 'open' };

/**
 * The notifier holds its jobs while the `notifications` switch is off, and until it has read the
 * switches once: the jobs come from the same Redis, so a notifier that cannot read the switches
 * could not take a job either, and one that just started never sends what an operator held.
 */
function notificationsHold(switches: Switches): WorkerHold {
  return {
    held: () => !switches.hasRead || !switches.isOn('notifications'),
    onChange: (listener) => {
      void switches.read.then(listener);
      return switches.onChange((name) => {
        if (name === 'notifications') listener();
      });
    },
  };
}
