import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import { sendNotificationJob } from '../jobs/send-notification.ts';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db.ts';
import { ProviderUnavailableError } from '../shared/errors/index.ts';
import type { Logger } from '../shared/logger.ts';
import { batchesInFlight } from '../shared/micro-batcher.ts';
import { BatchedNotificationLedger } from '../shared/notifications/ledger-steps.ts';
import { ProviderClient, type ProviderClientOptions } from '../shared/notifications/provider-client.ts';
import { MAX_WAIT_FOR_PROVIDER_MS, notificationBackoff, waitForProviderMs } from '../shared/notifications/retry-policy.ts';
import { parsePayload } from '../shared/queues/payload-schemas.ts';
import { QUEUE_NAMES } from '../shared/queues/queue-names.ts';
import { startSupervisedWorker } from './supervised-worker.ts';

export interface Notifier {
  readonly worker: Worker;
  /** The provider client every job of this process shares, with its circuit breaker. */
  readonly provider: ProviderClient;
  /** Stops taking jobs, waits for the ones in flight, then closes the breaker and every connection. */
  close(): Promise<void>;
}

/**
 * The notifier of one process: a BullMQ worker on the notifications queue, separate from the
 * orders queue and with its own concurrency, so a flood of notifications (or a provider outage)
 * never slows pricing or dispatch. Every job goes through one provider client, so they share one
 * circuit breaker; while it is open, jobs fail fast and come back when it may close again.
 */
export async function startNotifier(
  config: Config,
  logger: Logger,
  opts: { provider?: ProviderClientOptions } = {},
): Promise<Notifier> {
  const db = createDb(config, { logger });
  const ledger = new BatchedNotificationLedger(db, {
    maxSize: config.notifyBatchMax,
    maxWaitMs: config.notifyBatchWaitMs,
    maxInFlight: batchesInFlight(config.notifyBatchMax, config.notifierConcurrency),
  });
  const provider = new ProviderClient(config, { connections: config.notifierConcurrency, ...opts.provider });
  provider.onStateChange((state) => {
    const fields = { breaker: state, stats: provider.stats, provider: config.notifyProviderUrl };
    if (state === 'closed') logger.info(fields, 'notification provider breaker closed: sending again');
    else if (state === 'open') logger.warn({ ...fields, retryInMs: provider.retryAfterMs() }, 'notification provider breaker opened: failing fast');
    else logger.info(fields, 'notification provider breaker half-open: trying one call');
  });

  const processor = async (job: Job, token?: string, signal?: AbortSignal) => {
    const jobLogger = logger.child({ job: job.id, name: job.name });
    if (job.name !== 'notify.send') throw new UnrecoverableError(`unknown job name "${job.name}" on the notifications queue`);
    const payload = parsePayload('notify.send', job.data);
    try {
      return await sendNotificationJob(payload, { ledger, provider, logger: jobLogger, ...(signal ? { signal } : {}) });
    } catch (error) {
      // The breaker is open: nothing reached the provider. Wait until it may let a call through,
      // without spending one of the job's attempts (whatever options its producer gave it), for
      // up to MAX_WAIT_FOR_PROVIDER_MS after the notification was enqueued.
      if (error instanceof ProviderUnavailableError && token !== undefined && Date.now() - job.timestamp < MAX_WAIT_FOR_PROVIDER_MS) {
        const waitMs = waitForProviderMs(error);
        await job.moveToDelayed(Date.now() + waitMs, token);
        jobLogger.debug({ waitMs, breaker: provider.state }, 'provider breaker open: notification waits');
        throw new DelayedError();
      }
      throw error;
    }
  };

  const supervised = startSupervisedWorker({
    queue: QUEUE_NAMES.notifications,
    processor,
    concurrency: config.notifierConcurrency,
    config,
    logger,
    settings: { backoffStrategy: notificationBackoff },
    onFailed: (job, error, final) => {
      const fields = { job: job.id, name: job.name, data: job.data, attemptsMade: job.attemptsMade, final, breaker: provider.state };
      // The ledger row keeps the last error; a notification given up on stays PENDING there.
      if (final) logger.error({ ...fields, err: error }, 'notification given up');
      else logger.warn({ ...fields, reason: error.message }, 'notification attempt failed; retrying later');
    },
  });

  return {
    get worker() {
      return supervised.worker;
    },
    provider,
    async close() {
      await supervised.close();
      await ledger.idle();
      await provider.close();
      await db.destroy();
    },
  };
}
