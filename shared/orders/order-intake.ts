import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import { ApiError, DbUnavailableError, coerceError, isConnectionError } from '../errors/index.ts';
import { shardOf, type IdGenerator } from '../ids.ts';
import type { Logger } from '../logger.ts';
import type { MerchantDirectory } from '../merchants/merchant-directory.ts';
import type { IntakeMetrics } from '../metrics/intake-metrics.ts';
import { MicroBatcher, type ItemOutcome } from '../micro-batcher.ts';
import { DeadlineExceeded, withDeadline } from '../with-deadline.ts';
import type { CreateOrderBody } from './create-order-schema.ts';
import { insertOrders, newOrderRow, type InsertOutcome, type NewOrderRow } from './insert-orders.ts';
import { PriceSlots, type PriceSlot } from './price-slots.ts';
import { orderRequestHash } from './request-hash.ts';

export interface AcceptedOrder {
  readonly id: string;
  readonly status: 'CREATED';
  /** True when this answer repeats the first answer given for the same Idempotency-Key. */
  readonly replayed: boolean;
}

export interface OrderIntakeDeps {
  readonly config: Pick<
    Config,
    | 'shardCount'
    | 'dbTimeoutMs'
    | 'redisTimeoutMs'
    | 'intakeBatchMax'
    | 'intakeBatchWaitMs'
    | 'intakeMaxInFlight'
    | 'intakeMaxPending'
    | 'priceBatchWaitMs'
    | 'priceBatchMax'
  >;
  /** The intake's own pool, opened with multipleStatements. */
  readonly db: Db;
  /** Puts a price batch on the orders queue as one job (its id follows from its name, so a repeat is a no-op). */
  readonly enqueuePriceBatch: (batch: { readonly orderIds: readonly string[]; readonly attempt: 0; readonly batch: string }) => Promise<unknown>;
  readonly ids: IdGenerator;
  readonly merchants: MerchantDirectory;
  readonly logger: Logger;
  readonly metrics: IntakeMetrics;
  /** Told of each order refused because INTAKE_MAX_PENDING orders already wait (the web counts it). */
  readonly onShed?: () => void;
}

/**
 * The intake: turns a validated request into a committed CREATED order. Concurrent requests are
 * committed together in micro-batches; the answer is given only after the commit. The micro-batches
 * committed within PRICE_BATCH_WAIT_MS ride in one price job (PriceSlots), which every row names;
 * if Redis is away its orders stay CREATED in MySQL, naming their job, which is the outbox the
 * reconciler drains. At most INTAKE_MAX_PENDING orders wait for a place in a batch: past that an
 * order is refused at once (503 OVERLOADED) rather than queued behind work that cannot finish in
 * time.
 */
export class OrderIntake {
  private readonly batcher: MicroBatcher<NewOrderRow, InsertOutcome>;
  private readonly slots: PriceSlots;
  private readonly enqueues = new Set<Promise<void>>();
  private readonly abandonedWrites = new Set<Promise<unknown>>();

  private readonly deps: OrderIntakeDeps;

  constructor(deps: OrderIntakeDeps) {
    this.deps = deps;
    this.slots = new PriceSlots({
      waitMs: deps.config.priceBatchWaitMs,
      max: deps.config.priceBatchMax,
      enqueue: (slot, orderIds) => this.enqueueInBackground(slot, orderIds),
    });
    this.batcher = new MicroBatcher((rows) => this.commitBatch(rows), {
      maxSize: deps.config.intakeBatchMax,
      maxWaitMs: deps.config.intakeBatchWaitMs,
      maxInFlight: deps.config.intakeMaxInFlight,
    });
  }

  /** Orders waiting for a place in a batch (bounded by INTAKE_MAX_PENDING). */
  get pending(): number {
    return this.batcher.size;
  }

  async accept(clientId: string, idempotencyKey: string, body: CreateOrderBody, requestId: string | null = null): Promise<AcceptedOrder> {
    const { metrics } = this.deps;
    const hash = orderRequestHash(body);
    const cached = this.deps.merchants.peek(body.merchantId);
    const merchant =
      cached === undefined
        ? await withDeadline(this.deps.merchants.get(body.merchantId), this.deps.config.dbTimeoutMs).catch((error: unknown) => {
            throw toUnavailable(error);
          })
        : cached;
    if (!merchant) {
      metrics.intakeOrders.inc({ outcome: 'rejected' });
      throw new ApiError('UNKNOWN_MERCHANT', `merchantId ${body.merchantId} is not a merchant Courier knows`, { field: 'merchantId' });
    }
    if (this.batcher.size >= this.deps.config.intakeMaxPending) {
      metrics.intakeOrders.inc({ outcome: 'shed' });
      this.deps.onShed?.();
      throw new ApiError('OVERLOADED');
    }
    const row = newOrderRow({
      id: this.newId(body.merchantId),
      clientId,
      idempotencyKey,
      requestHash: hash,
      merchant,
      body,
      requestId,
    });
    let outcome: InsertOutcome;
    try {
      outcome = await this.batcher.submit(row);
    } catch (error) {
      if (error instanceof DbUnavailableError) metrics.intakeOrders.inc({ outcome: 'unavailable' });
      throw error;
    }
    if (outcome.kind === 'created') {
      metrics.intakeOrders.inc({ outcome: 'created' });
      return { id: outcome.id, status: 'CREATED', replayed: false };
    }
    if (outcome.kind === 'existing' && outcome.requestHash === hash) {
      metrics.intakeOrders.inc({ outcome: 'replayed' });
      return { id: outcome.id, status: 'CREATED', replayed: true };
    }
    metrics.intakeOrders.inc({ outcome: 'rejected' });
    throw new ApiError('IDEMPOTENCY_KEY_REUSED');
  }

  /**
   * Resolves once every accepted order is committed and its enqueue attempt has settled, and every
   * write abandoned at its deadline has rolled back (shutdown must not close the pool under them).
   */
  async idle(): Promise<void> {
    do {
      await this.batcher.idle();
      this.slots.closeOpen(); // enqueued as soon as its commits settle, which they have: the batcher is idle
      await Promise.all([...this.enqueues, ...this.abandonedWrites]);
    } while (this.batcher.size > 0 || this.enqueues.size > 0 || this.abandonedWrites.size > 0);
  }

  private newId(merchantId: string): string {
    return this.deps.ids.next(shardOf(merchantId, this.deps.config.shardCount));
  }

  private async commitBatch(rows: NewOrderRow[]): Promise<ItemOutcome<InsertOutcome>[]> {
    const { db, config, metrics } = this.deps;
    const stopTimer = metrics.intakeBatchSeconds.startTimer();
    const slot = this.slots.join(rows.length);
    let outcomes: InsertOutcome[];
    try {
      outcomes = await insertOrders(db, rows, {
        timeoutMs: config.dbTimeoutMs,
        priceJobId: slot.jobId,
        newId: (row) => this.newId(row.merchant_id),
        onAbandoned: (settling) => {
          const tracked = settling.finally(() => this.abandonedWrites.delete(tracked));
          this.abandonedWrites.add(tracked);
        },
      });
    } catch (error) {
      this.slots.settle(slot, []);
      throw error;
    }
    stopTimer();
    metrics.intakeBatchSize.observe(rows.length);
    this.slots.settle(
      slot,
      outcomes.flatMap((o) => (o.kind === 'created' ? [o.id] : [])),
    );
    return outcomes.map((o) => (o.kind === 'failed' ? { ok: false, error: o.error } : { ok: true, value: o }));
  }

  private enqueueInBackground(slot: PriceSlot, orderIds: readonly string[]): void {
    const { logger, metrics } = this.deps;
    const task = this.deps
      .enqueuePriceBatch({ orderIds, attempt: 0, batch: slot.batch })
      .then(() => undefined)
      .catch((error: unknown) => {
        metrics.enqueueFailures.inc(orderIds.length);
        logger.warn(
          { err: coerceError(error), count: orderIds.length, jobId: slot.jobId },
          'orders committed but not enqueued; they stay CREATED in MySQL for the reconciler',
        );
      })
      .finally(() => this.enqueues.delete(task));
    this.enqueues.add(task);
  }
}

function toUnavailable(error: unknown): Error {
  const cause = coerceError(error);
  return cause instanceof DeadlineExceeded || isConnectionError(cause) ? new DbUnavailableError(cause) : cause;
}
