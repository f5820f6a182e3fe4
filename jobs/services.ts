import type { ZoneLocks } from '../shared/cache/zone-locks.ts';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import type { NotifierMetrics, WorkerMetrics } from '../shared/metrics/process-metrics.ts';
import type { NotificationBatchSender } from '../shared/notifications/provider-client.ts';
import type { MatchInput, MatchOutput } from '../shared/orders/dispatch-matching.ts';
import type { PricingInput, PricingResult } from '../shared/orders/pricing.ts';
import type { RetryPolicy } from '../shared/orders/retry-schedule.ts';
import type { OrderWriterDeps } from '../shared/orders/write-orders.ts';
import type { ZoneLoad } from '../shared/orders/zone-load.ts';
import type { QueueName } from '../shared/queues/queue-names.ts';
import type { Redis } from '../shared/redis.ts';
import type { Switches } from '../shared/switches/switches.ts';
import type { DispatchBooking } from './book-dispatch.ts';
import type { JobProducer } from './producer.ts';

/** What the worker process holds for the jobs of its queues (orders, dispatch, maintenance); built by workers/worker-services.ts. */
export interface WorkerServices {
  readonly config: Config;
  readonly db: Db;
  /** The connection the cache's pipelines go over. */
  readonly redis: Redis;
  readonly writer: OrderWriterDeps;
  readonly producer: JobProducer;
  /** Books zones' dispatch runs (one per process: it remembers the windows it booked). */
  readonly dispatch: DispatchBooking;
  /** Prices many orders in one call off the event loop (a piscina thread). */
  readonly priceMany: (inputs: readonly PricingInput[]) => Promise<readonly PricingResult[]>;
  /** Solves a dispatch batch's assignment problem off the event loop (a piscina thread). */
  readonly match: (input: MatchInput) => Promise<MatchOutput>;
  readonly zoneLoad: Pick<ZoneLoad, 'get'>;
  readonly zoneLocks: ZoneLocks;
  readonly retry: RetryPolicy;
  /** The degradation switches as this process reads them (warm-up). */
  readonly switches: Switches;
  readonly metrics?: WorkerMetrics;
}

/** What the notifier process holds for notification jobs. */
export interface NotifierServices {
  readonly db: Db;
  /** The provider behind its timeout and circuit breaker, shared by every job of the process. */
  readonly provider: NotificationBatchSender;
  readonly metrics?: NotifierMetrics;
}

/** The services a queue's jobs run with. */
export interface QueueServices {
  readonly orders: WorkerServices;
  readonly dispatch: WorkerServices;
  readonly maintenance: WorkerServices;
  readonly notifications: NotifierServices;
}

export type ServicesOf<Q extends QueueName> = QueueServices[Q];

/** What a worker hands a job besides its payload and services. */
export interface JobContext {
  readonly id: string;
  /** The job's own logger (its id and name on every line). */
  readonly logger: Logger;
  /** Aborted when the job is cancelled (its worker shuts down). */
  readonly signal?: AbortSignal;
}
