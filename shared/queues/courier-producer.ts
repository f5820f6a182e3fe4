import type { JobsOptions, Queue } from 'bullmq';
import { InvalidJobPayloadError } from '../errors/index.ts';
import { createProducerRedis, type Redis } from '../redis.ts';
import { withDeadline } from '../with-deadline.ts';
import { createQueue } from './create-queue.ts';
import { NOTIFICATION_JOB_OPTIONS } from '../notifications/retry-policy.ts';
import { MAINTENANCE_JOB_OPTIONS } from './maintenance-producer.ts';
import { payloadProblem } from './payload-schemas.ts';
import {
  dispatchJobId,
  maintenanceJobId,
  notificationJobId,
  orderJobId,
  warmUpJobId,
  type JobName,
  type JobPayloads,
} from './payloads.ts';
import { QUEUE_NAMES, type QueueName } from './queue-names.ts';

export interface CourierProducerOptions {
  /** redis://host:port of Courier's Redis. */
  readonly redisUrl: string;
  /** Courier's QUEUE_PREFIX. Default {courier} */
  readonly queuePrefix?: string;
  /** Bound on one add, in ms. Default 1000 */
  readonly timeoutMs?: number;
}

const QUEUE_OF: Readonly<Record<JobName, QueueName>> = {
  'order.price': QUEUE_NAMES.orders,
  'dispatch.zone': QUEUE_NAMES.dispatch,
  'notify.send': QUEUE_NAMES.notifications,
  'cache.warm-up': QUEUE_NAMES.maintenance,
  'orders.compensate': QUEUE_NAMES.maintenance,
  'orders.reconcile': QUEUE_NAMES.maintenance,
};

/** Job options beyond the queue's defaults (retries, how long a finished job is kept). */
const OPTIONS_OF: Readonly<Partial<Record<JobName, JobsOptions>>> = {
  'notify.send': NOTIFICATION_JOB_OPTIONS,
  'cache.warm-up': MAINTENANCE_JOB_OPTIONS,
  'orders.compensate': MAINTENANCE_JOB_OPTIONS,
  'orders.reconcile': MAINTENANCE_JOB_OPTIONS,
};

/** The job id each job gets, so that adding the same work twice is a no-op while its job exists. */
function jobIdOf<N extends JobName>(name: N, payload: JobPayloads[N]): string {
  switch (name) {
    case 'order.price':
      return orderJobId((payload as JobPayloads['order.price']).orderId);
    case 'dispatch.zone':
      return dispatchJobId((payload as JobPayloads['dispatch.zone']).zoneId, Date.now());
    case 'cache.warm-up':
      return warmUpJobId((payload as JobPayloads['cache.warm-up']).reason, new Date());
    case 'orders.compensate':
      return maintenanceJobId('compensate', (payload as JobPayloads['orders.compensate']).reason, new Date());
    case 'orders.reconcile':
      return maintenanceJobId('reconcile', (payload as JobPayloads['orders.reconcile']).reason, new Date());
    default: {
      const { orderId, kind } = payload as JobPayloads['notify.send'];
      return notificationJobId(orderId, kind);
    }
  }
}

/**
 * What other Node services import to put work on Courier's queues: typed by the one payload map,
 * checked against the same schemas the workers check (a bad payload is refused here, before it is
 * added), routed to the right queue with the right job id, and bounded in time.
 *
 *   const producer = new CourierProducer({ redisUrl: 'redis://127.0.0.1:6379' });
 *   await producer.add('notify.send', { orderId: '382636929890876416', kind: 'customer.cancelled' });
 *   await producer.close();
 */
export class CourierProducer {
  private readonly redis: Redis;
  private readonly queues = new Map<QueueName, Queue>();
  private readonly prefix: string;
  private readonly timeoutMs: number;

  constructor(opts: CourierProducerOptions) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.prefix = opts.queuePrefix ?? '{courier}';
    this.redis = createProducerRedis({ redisUrl: opts.redisUrl, redisTimeoutMs: this.timeoutMs });
    this.redis.on('error', () => undefined); // each add reports its own failure
  }

  /** Adds one job; resolves with its id. Throws InvalidJobPayloadError for a payload that does not fit. */
  async add<N extends JobName>(name: N, payload: JobPayloads[N]): Promise<string> {
    const problem = payloadProblem(name, payload);
    if (problem) throw new InvalidJobPayloadError(problem);
    const jobId = jobIdOf(name, payload);
    const opts = { ...OPTIONS_OF[name], jobId };
    await withDeadline(this.queue(QUEUE_OF[name]).add(name, payload, opts), this.timeoutMs);
    return jobId;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.redis.disconnect();
  }

  private queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = createQueue(name, { connection: this.redis, prefix: this.prefix });
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }
}
