import type { Worker } from 'bullmq';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { ProviderClient, type ProviderClientOptions } from '../shared/notifications/provider-client.ts';
import { notificationBackoff } from '../shared/notifications/retry-policy.ts';
import { startQueueWorker } from './queue-worker.ts';

export interface Notifier {
  readonly worker: Worker;
  /** The provider client every job of this process shares, with its circuit breaker. */
  readonly provider: ProviderClient;
  /** Stops taking jobs, waits for the ones in flight, then closes the breaker and every connection. */
  close(): Promise<void>;
}

/**
 * The notifier of one process: a worker on the notifications queue, separate from the order
 * pipeline and with its own concurrency, so a flood of notifications (or a provider outage) never
 * slows pricing or dispatch. A job carries a batch; every job goes through one provider client, so
 * they share one circuit breaker; while it is open, jobs wait for it without spending attempts.
 */
export async function startNotifier(config: Config, logger: Logger, opts: { provider?: ProviderClientOptions } = {}): Promise<Notifier> {
  const db = createDb(config, { logger });
  const provider = new ProviderClient(config, { connections: config.notifierConcurrency * 2, ...opts.provider });
  provider.onStateChange((state) => {
    const fields = { breaker: state, stats: provider.stats, provider: config.notifyProviderUrl };
    if (state === 'closed') logger.info(fields, 'notification provider breaker closed: sending again');
    else if (state === 'open') logger.warn({ ...fields, retryInMs: provider.retryAfterMs() }, 'notification provider breaker opened: failing fast');
    else logger.info(fields, 'notification provider breaker half-open: trying one call');
  });
  const running = startQueueWorker({
    queue: 'notifications',
    services: { db, provider },
    concurrency: config.notifierConcurrency,
    config,
    logger,
    // Exponential with jitter, never sooner than the breaker lets a call through again.
    settings: { backoffStrategy: notificationBackoff },
  });
  return {
    get worker() {
      return running.worker;
    },
    provider,
    async close() {
      await running.close();
      await provider.close();
      await db.destroy();
    },
  };
}
