import { createProducerRedis, type Redis } from '../shared/redis.ts';
import { JobProducer } from './producer.ts';
import type { JobName, JobPayloads } from './payloads.ts';

export interface CourierProducerOptions {
  /** redis://host:port of Courier's Redis. */
  readonly redisUrl: string;
  /** Courier's QUEUE_PREFIX. Default {courier} */
  readonly queuePrefix?: string;
  /** Bound on one add, in ms. Default 1000 */
  readonly timeoutMs?: number;
}

/**
 * What other Node services import to put work on Courier's queues: the one producer with a Redis
 * connection of its own. Typed by the one payload map, checked against the same schemas the
 * workers check (a bad payload is refused here, before it is added), routed to the right queue
 * with the right job id by the table of job types, and bounded in time.
 *
 *   const producer = new CourierProducer({ redisUrl: 'redis://127.0.0.1:6379' });
 *   await producer.add('notify.batch', { notifications: [{ orderId: '382636929890876416', kind: 'customer.cancelled' }] });
 *   await producer.close();
 */
export class CourierProducer {
  private readonly redis: Redis;
  private readonly producer: JobProducer;

  constructor(opts: CourierProducerOptions) {
    const timeoutMs = opts.timeoutMs ?? 1000;
    this.redis = createProducerRedis({ redisUrl: opts.redisUrl, redisTimeoutMs: timeoutMs });
    this.redis.on('error', () => undefined); // each add reports its own failure
    this.producer = new JobProducer(this.redis, { prefix: opts.queuePrefix ?? '{courier}', timeoutMs });
  }

  /** Adds one job; resolves with its id. Throws InvalidJobPayloadError for a payload that does not fit. */
  add<N extends JobName>(name: N, payload: JobPayloads[N]): Promise<string> {
    return this.producer.add(name, payload);
  }

  async close(): Promise<void> {
    await this.producer.close();
    this.redis.disconnect();
  }
}
