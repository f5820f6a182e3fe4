import type { JobsOptions } from 'bullmq';
import { ProviderUnavailableError } from '../shared/errors/index.ts';
import { MAX_WAIT_FOR_PROVIDER_MS, NOTIFICATION_JOB_OPTIONS, waitForProviderMs } from '../shared/notifications/retry-policy.ts';
import { DEFAULT_JOB_OPTIONS } from '../shared/queues/create-queue.ts';
import { dispatchJobId, maintenanceJobId, notificationBatchJobId, priceJobId, warmUpJobId } from '../shared/queues/job-ids.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import { compensateOrdersJob } from './compensate-orders.ts';
import { dispatchZoneJob } from './dispatch-zone.ts';
import { payloadProblem, type JobName, type JobPayloads } from './payloads.ts';
import { priceOrdersJob, recordPricingFailed, type PriceOrdersDeps } from './price-orders.ts';
import { reconcileOrdersJob } from './reconcile-orders.ts';
import { sendNotificationsJob, type SendNotificationsDeps } from './send-notifications.ts';
import type { JobContext, NotifierServices, ServicesOf, WorkerServices } from './services.ts';
import { warmUpCacheJob } from './warm-up-cache.ts';

/** One job type: where it goes, how it is named and retried, and what runs it. */
export interface JobType<N extends JobName, Q extends QueueName = QueueName> {
  readonly queue: Q;
  /** The id rule: adding the same work twice is a no-op while its job exists. */
  readonly jobId: (payload: JobPayloads[N]) => string;
  /** Retries and retention beyond the queue's defaults. */
  readonly options: JobsOptions;
  /** What one job carried, in a few words (the dashboard's job title): never personal data, ids and counts only. */
  readonly describe: (payload: JobPayloads[N]) => string;
  /** The orders the job carries, when its payload names them: its failure lines list them, so `grep <order id>` finds them. */
  readonly orderIds?: (payload: JobPayloads[N]) => readonly string[];
  /** The handler: a plain async function of the payload and what the queue's process holds. */
  readonly run: (payload: JobPayloads[N], services: ServicesOf<Q>, job: JobContext) => Promise<unknown>;
  /** After the last attempt failed (not for a malformed payload): record what the job could not do. */
  readonly onFinalFailure?: (payload: JobPayloads[N], error: Error, services: ServicesOf<Q>, job: JobContext) => Promise<void>;
  /** How long to put the job back to wait, without spending an attempt, for this error (undefined: fail the attempt). */
  readonly postponeFor?: (error: Error, enqueuedAt: number) => number | undefined;
  /** Not produced any more; still run for a Redis that holds such jobs from before a deploy. */
  readonly legacy?: true;
}

const MAINTENANCE_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000, jitter: 0.5 },
  // Kept a day (at most 1,000): a job id only guards while its job exists, and a second
  // scheduler whose tick arrives after the first one's job finished must still find it.
  removeOnComplete: { age: 24 * 3600, count: 1000 },
};

function pricing(services: WorkerServices, job: JobContext): PriceOrdersDeps {
  return {
    db: services.db,
    writer: services.writer,
    priceMany: services.priceMany,
    zoneLoad: services.zoneLoad,
    bookDispatch: (zoneIds) => services.dispatch.next(zoneIds),
    lockWaitMs: services.config.lockWaitMs,
    retry: services.retry,
    jobId: job.id,
    logger: job.logger,
    ...(services.metrics ? { metrics: services.metrics } : {}),
  };
}

function maintenance(services: WorkerServices, job: JobContext) {
  return {
    db: services.db,
    writer: services.writer,
    producer: services.producer,
    dispatchNow: (zoneIds: readonly string[]) => services.dispatch.now(zoneIds),
    logger: job.logger,
    jobId: job.id,
    ...(services.metrics ? { metrics: services.metrics } : {}),
    ...(job.signal ? { signal: job.signal } : {}),
  };
}

function notifying(services: NotifierServices, job: JobContext): SendNotificationsDeps {
  return {
    db: services.db,
    provider: services.provider,
    jobId: job.id,
    logger: job.logger,
    ...(job.signal ? { signal: job.signal } : {}),
    ...(services.metrics ? { metrics: services.metrics } : {}),
  };
}

/** Waits out an open breaker without spending attempts, for up to MAX_WAIT_FOR_PROVIDER_MS after the job was enqueued. */
function waitForProvider(error: Error, enqueuedAt: number): number | undefined {
  if (!(error instanceof ProviderUnavailableError) || Date.now() - enqueuedAt >= MAX_WAIT_FOR_PROVIDER_MS) return undefined;
  return waitForProviderMs(error);
}

const slot = (at: number | undefined) => new Date(at ?? Date.now());

const plural = (count: number, one: string) => `${count} ${one}${count === 1 ? '' : 's'}`;
/** A time of day (UTC), to the millisecond: enough to tell windows and ticks apart. */
const clock = (at: number) => `${new Date(at).toISOString().slice(11, 23)}Z`;
const describeTick = (what: string) => (payload: { reason: string; at?: number | undefined }) =>
  `${what}, ${payload.reason}${payload.at === undefined ? '' : ` tick at ${clock(payload.at)}`}`;

/**
 * Every job type, declared once: the producer (jobs/producer.ts), the workers (one per queue,
 * workers/queue-worker.ts), CourierProducer for other services and the dashboard are built from
 * this table.
 */
export const JOB_TYPES: { readonly [N in JobName]: JobType<N, JobQueue<N>> } = {
  'orders.price': {
    queue: 'orders',
    jobId: (payload) => priceJobId(payload),
    options: DEFAULT_JOB_OPTIONS,
    describe: (payload) => `${plural(payload.orderIds.length, 'order')} from ${payload.orderIds[0]}, attempt ${payload.attempt}`,
    orderIds: (payload) => payload.orderIds,
    run: (payload, services, job) => priceOrdersJob(payload, pricing(services, job)),
    onFinalFailure: async (payload, error, services, job) => void (await recordPricingFailed(payload, error, pricing(services, job))),
  },
  'dispatch.zone': {
    queue: 'dispatch',
    jobId: (payload) => dispatchJobId(payload.zoneId, payload.window ?? Date.now()),
    options: DEFAULT_JOB_OPTIONS,
    describe: (payload) => `zone ${payload.zoneId}${payload.window === undefined ? '' : `, window ${clock(payload.window)}`}`,
    run: (payload, services, job) => {
      const { config } = services;
      return dispatchZoneJob(payload, {
        db: services.db,
        writer: services.writer,
        match: services.match,
        dispatchAgain: (zoneId) => services.dispatch.now([zoneId]),
        dispatchLater: (zoneId) => services.dispatch.next([zoneId]),
        zoneLock: services.zoneLocks,
        batchSize: config.dispatchBatchSize,
        maxBatchesPerRun: config.dispatchMaxBatchesPerRun,
        radiusMeters: config.dispatchRadiusMeters,
        retry: services.retry,
        jobId: job.id,
        logger: job.logger,
        ...(services.metrics ? { metrics: services.metrics } : {}),
      });
    },
  },
  'notify.batch': {
    queue: 'notifications',
    jobId: (payload) => notificationBatchJobId(payload.notifications, payload.batch),
    options: NOTIFICATION_JOB_OPTIONS,
    describe: (payload) =>
      `${plural(payload.notifications.length, 'notification')} for ${plural(new Set(payload.notifications.map((n) => n.orderId)).size, 'order')} from ${payload.notifications[0]!.orderId}`,
    run: (payload, services, job) =>
      sendNotificationsJob(payload, notifying(services, job)),
    orderIds: (payload) => [...new Set(payload.notifications.map((n) => n.orderId))],
    postponeFor: waitForProvider,
  },
  'cache.warm-up': {
    queue: 'maintenance',
    jobId: (payload) => warmUpJobId(payload.reason, slot(payload.at)),
    options: MAINTENANCE_JOB_OPTIONS,
    describe: describeTick('cache warm-up'),
    run: (payload, services, job) =>
      warmUpCacheJob(payload, {
        db: services.db,
        redis: services.redis,
        config: services.config,
        logger: job.logger,
        switches: services.switches,
        ...(services.metrics ? { metrics: services.metrics } : {}),
        ...(job.signal ? { signal: job.signal } : {}),
      }),
  },
  'orders.compensate': {
    queue: 'maintenance',
    jobId: (payload) => maintenanceJobId('compensate', payload.reason, slot(payload.at)),
    options: MAINTENANCE_JOB_OPTIONS,
    describe: describeTick('compensation'),
    run: (payload, services, job) => {
      const { config } = services;
      return compensateOrdersJob(payload, {
        ...maintenance(services, job),
        policy: services.retry,
        enqueuePriceBatches: async (batches) => void (await services.producer.addMany('orders.price', batches)),
        batchSize: config.maintenanceBatchSize,
      });
    },
  },
  'orders.reconcile': {
    queue: 'maintenance',
    jobId: (payload) => maintenanceJobId('reconcile', payload.reason, slot(payload.at)),
    options: MAINTENANCE_JOB_OPTIONS,
    describe: describeTick('reconciliation'),
    run: (payload, services, job) => {
      const { config } = services;
      return reconcileOrdersJob(payload, {
        ...maintenance(services, job),
        retry: services.retry,
        createdAfterMs: config.reconcileCreatedAfterMs,
        stuckAfterMs: config.reconcileStuckAfterMs,
        notifyAfterMs: config.reconcileNotifyAfterMs,
        notifyAttemptBudget: config.notifyAttemptBudget,
        batchSize: config.maintenanceBatchSize,
      });
    },
  },
  'order.price': {
    queue: 'orders',
    jobId: (payload) => `order-${payload.orderId}`,
    options: DEFAULT_JOB_OPTIONS,
    describe: (payload) => `order ${payload.orderId} alone (from before batches)`,
    orderIds: (payload) => [payload.orderId],
    run: (payload, services, job) => priceOrdersJob({ orderIds: [payload.orderId], attempt: 0 }, pricing(services, job)),
    onFinalFailure: async (payload, error, services, job) =>
      void (await recordPricingFailed({ orderIds: [payload.orderId], attempt: 0 }, error, pricing(services, job))),
    legacy: true,
  },
  'notify.send': {
    queue: 'notifications',
    jobId: (payload) => `notify-${payload.orderId}-${payload.kind.replace('.', '-')}`,
    options: NOTIFICATION_JOB_OPTIONS,
    describe: (payload) => `${payload.kind} for order ${payload.orderId} (from before batches)`,
    orderIds: (payload) => [payload.orderId],
    run: (payload, services, job) =>
      sendNotificationsJob({ notifications: [payload] }, notifying(services, job)),
    postponeFor: waitForProvider,
    legacy: true,
  },
};

/** The queue each job type goes on (as the table says). */
type QueueOf = {
  'orders.price': 'orders';
  'dispatch.zone': 'dispatch';
  'notify.batch': 'notifications';
  'cache.warm-up': 'maintenance';
  'orders.compensate': 'maintenance';
  'orders.reconcile': 'maintenance';
  'order.price': 'orders';
  'notify.send': 'notifications';
};
type JobQueue<N extends JobName> = QueueOf[N];

/** The job types a queue's worker runs. */
export function jobTypesOf(queue: QueueName): JobName[] {
  return (Object.keys(JOB_TYPES) as JobName[]).filter((name) => JOB_TYPES[name].queue === queue);
}

/**
 * What a job carried, as its type describes it (the dashboard's job titles); undefined for a name
 * the table does not know or a payload that breaks its schema (shown as it is, masked).
 */
export function describeJob(name: string, data: unknown): string | undefined {
  if (payloadProblem(name, data) !== undefined) return undefined;
  return (JOB_TYPES[name as JobName].describe as (payload: unknown) => string)(data);
}

/** The queues of the table, each once (for the dashboard and the workers). */
export const QUEUES: readonly QueueName[] = [...new Set(Object.values(JOB_TYPES).map((type) => type.queue))];
