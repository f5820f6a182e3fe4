import { LRUCache } from 'lru-cache';
import { EXACT_TTL } from './exact-ttl.ts';
import type { Db } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import { readOrder, type OrderRecord } from '../orders/read-order.ts';
import type { Redis } from '../redis.ts';
import type { CachedOrder, OrderCache } from './order-cache.ts';

/**
 * Refreshes due within this window go to Redis together, in one pipelined round trip: each one
 * alone cost a write to Redis and a read of its answer, ~10% of a cached server's busy time at
 * ~1,000 hot orders a second (V8 profile, bench/RESULTS.md, issue 14). A copy is due a quarter of
 * L1_TTL_MS before its end, so the wait costs it nothing.
 */
export const REFRESH_BATCH_MS = 10;

export type ReadSource = 'l1' | 'l2' | 'mysql';
/** A refresh ahead found L2 holding the version in L1 (kept), another one (replaced), or failed. */
export type RefreshOutcome = 'kept' | 'replaced' | 'failed';

export interface OrderReaderDeps {
  readonly cache: OrderCache;
  /** The primary: read right after the client's own write, and when no replica is configured. */
  readonly primary: Db;
  readonly replica?: Db;
  /** A connection of its own, for SUBSCRIBE. */
  readonly subscriber: Redis;
  readonly invalidationChannel: string;
  readonly l1TtlMs: number;
  readonly l1Max: number;
  readonly logger: Logger;
  readonly onRead?: (source: ReadSource) => void;
  readonly onRefresh?: (outcome: RefreshOutcome) => void;
  /** The clock of L1's TTL, in ms (tests move it); default performance.now. */
  readonly now?: () => number;
  /** false: every read goes straight to MySQL (ORDER_CACHE=off). Default true */
  readonly enabled?: boolean;
}

/**
 * The read path of order status: L1 (this process's memory, a short TTL and a size bound) ->
 * L2 (Redis) -> MySQL (a replica when one is configured; the primary right after the client's own
 * write). Concurrent misses of one order share one load (single-flight), so a cold key under a
 * thousand readers costs one query. Writers publish an invalidation that drops L1 copies older
 * than the new version in every process; the TTL bounds the lag if one is lost.
 *
 * A copy read in the last quarter of its L1 life is refreshed ahead, in the background: L2 is asked
 * again (with the other copies due within REFRESH_BATCH_MS, in one round trip) and, when it still
 * holds that version, the copy stays (the same object, so its body and ETag made once stay too)
 * with its life renewed. A hot order is thus never a miss, and no read waits on Redis for it, yet
 * no copy outlives L1_TTL_MS unchecked. Misses used to be ~7% of cached reads, each a promise, a
 * deadline timer, a JSON.parse and a new body (bench/RESULTS.md, issue 14).
 */
export class OrderReader {
  private readonly l1: LRUCache<string, OrderRecord>;
  private readonly loading = new Map<string, Promise<{ record: OrderRecord | undefined; source: ReadSource }>>();
  /** The newest version an invalidation named while the order's load was on its way (see fillL1). */
  private readonly heardWhileLoading = new Map<string, number>();

  private readonly deps: OrderReaderDeps;
  private readonly refreshAheadMs: number;
  /** Reused by every L1 lookup (lru-cache fills it in): the held copy's remaining life. */
  private readonly l1Status: LRUCache.Status<string, OrderRecord> = {};
  private readonly l1Lookup = { status: this.l1Status };
  /** Copies due a refresh, sent to L2 together when the batch's timer fires. */
  private readonly due = new Map<string, OrderRecord>();
  private dueTimer: NodeJS.Timeout | undefined;

  constructor(deps: OrderReaderDeps) {
    this.deps = deps;
    const ttl = Math.max(1, deps.l1TtlMs);
    this.l1 = new LRUCache({ max: deps.l1Max, ttl, ...EXACT_TTL, ...(deps.now ? { perf: { now: deps.now } } : {}) });
    this.refreshAheadMs = ttl / 4;
  }

  /** Subscribes to invalidations; resolves once subscribed. */
  async start(): Promise<void> {
    // One message per change of one order or a batch: `<id>:<version>,<id>:<version>,...`.
    this.deps.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.deps.invalidationChannel) return;
      for (const pair of message.split(',')) {
        const [orderId, version] = pair.split(':');
        if (orderId && version) this.invalidate(orderId, Number(version));
      }
    });
    await this.deps.subscriber.subscribe(this.deps.invalidationChannel);
  }

  /** Drops this process's copy if it is older than `version`. */
  invalidate(orderId: string, version: number): void {
    const held = this.l1.get(orderId);
    if (held && held.order.version < version) this.l1.delete(orderId);
    // A refresh not yet sent must not renew the copy this drops.
    const due = this.due.get(orderId);
    if (due && due.order.version < version) this.due.delete(orderId);
    // A load on its way may bring back the version this drops: it must not keep it (fillL1).
    if (this.loading.has(orderId)) this.heardWhileLoading.set(orderId, Math.max(version, this.heardWhileLoading.get(orderId) ?? 0));
  }

  /** A writer in this process tells the reader at once (its own publish arrives later). */
  remember(record: OrderRecord): void {
    const held = this.l1.peek(record.order.id);
    if (!held || held.order.version < record.order.version) this.l1.set(record.order.id, record);
  }

  /**
   * This process's copy, if it holds one, without waiting (counted as an L1 read unless `count` is
   * false): the hot path of a read, which then needs no promise and no deadline. undefined: ask get().
   * A caller that may yet hand the read on to another path peeks uncounted, and counts the read it
   * answers itself with countHeldRead().
   */
  peek(orderId: string, count = true): OrderRecord | undefined {
    if (this.deps.enabled === false) return undefined;
    return this.held(orderId, count);
  }

  countHeldRead(): void {
    this.deps.onRead?.('l1');
  }

  async get(orderId: string, opts: { primary?: boolean } = {}): Promise<{ record: OrderRecord | undefined; source: ReadSource }> {
    if (this.deps.enabled === false) {
      this.deps.onRead?.('mysql');
      return { record: await readOrder(this.pickDb(opts.primary === true), orderId), source: 'mysql' };
    }
    const held = this.held(orderId);
    if (held) return { record: held, source: 'l1' };
    return this.loading.get(orderId) ?? this.startLoad(orderId, opts.primary === true);
  }

  /** This process's copy (counted as an L1 read), refreshed ahead when its life is nearly over. */
  private held(orderId: string, count = true): OrderRecord | undefined {
    const held = this.l1.get(orderId, this.l1Lookup);
    if (!held) return undefined;
    if (count) this.deps.onRead?.('l1');
    if ((this.l1Status.remainingTTL ?? Infinity) < this.refreshAheadMs && !this.loading.has(orderId) && !this.due.has(orderId)) {
      this.due.set(orderId, held);
      this.dueTimer ??= setTimeout(() => this.refreshDue(), REFRESH_BATCH_MS).unref();
    }
    return held;
  }

  /** The due copies' L2 entries in one round trip; each then goes on as its own load (single-flight, news heard meanwhile). */
  private refreshDue(): void {
    this.dueTimer = undefined;
    const due = [...this.due].filter(([orderId]) => !this.loading.has(orderId));
    this.due.clear();
    if (due.length === 0) return;
    const answers = this.deps.cache.getMany(due.map(([orderId, held]) => ({ orderId, heldVersion: held.order.version })));
    due.forEach(([orderId, held], i) => {
      this.startLoad(orderId, false, held, answers.then((all) => all[i]!)).then(
        ({ record }) => this.deps.onRefresh?.(record === held ? 'kept' : 'replaced'),
        (error: unknown) => {
          // The copy lives out its TTL; the next read past it loads as any miss does.
          this.deps.onRefresh?.('failed');
          this.deps.logger.debug({ err: coerceError(error), orderId }, 'L1 refresh failed');
        },
      );
    });
  }

  /** One load per order at a time: concurrent misses (and a refresh) share it. */
  private startLoad(
    orderId: string,
    primary: boolean,
    held?: OrderRecord,
    fromL2?: Promise<CachedOrder>,
  ): Promise<{ record: OrderRecord | undefined; source: ReadSource }> {
    const load = this.load(orderId, primary, held, fromL2).finally(() => {
      this.loading.delete(orderId);
      this.heardWhileLoading.delete(orderId);
    });
    this.loading.set(orderId, load);
    return load;
  }

  async close(): Promise<void> {
    clearTimeout(this.dueTimer);
    this.due.clear();
    this.deps.subscriber.disconnect();
  }

  /**
   * A loaded copy goes into L1 unless an invalidation of a newer version arrived while it was on its
   * way: it was read before that change, and kept it would be served after this process was told.
   * (It still answers the reads that were waiting on it: they began before the news.)
   */
  private fillL1(record: OrderRecord): void {
    const heard = this.heardWhileLoading.get(record.order.id);
    if (heard === undefined || heard <= record.order.version) this.remember(record);
  }

  /**
   * L2 still holds the version of this copy: it stays, with a new life, unless an invalidation of a
   * newer version came meanwhile or another copy took its place.
   */
  private renew(record: OrderRecord): void {
    const { id, version } = record.order;
    const heard = this.heardWhileLoading.get(id);
    if (heard !== undefined && heard > version) return;
    const current = this.l1.peek(id);
    if (current === undefined || current === record) this.l1.set(id, record);
  }

  private pickDb(primary: boolean): Db {
    return primary || !this.deps.replica ? this.deps.primary : this.deps.replica;
  }

  /** `held`: a refresh ahead of this copy (its reads are counted as L1's, not here), `fromL2` its batch's answer. */
  private async load(
    orderId: string,
    primary: boolean,
    held?: OrderRecord,
    fromL2?: Promise<CachedOrder>,
  ): Promise<{ record: OrderRecord | undefined; source: ReadSource }> {
    const cached = await (fromL2 ?? this.deps.cache.get(orderId, held?.order.version)).catch((error: unknown) => {
      // Redis away: the order is still in MySQL.
      this.deps.logger.debug({ err: coerceError(error), orderId }, 'L2 read failed; reading MySQL');
      return { kind: 'miss' } as const;
    });
    if (cached.kind === 'same' && held) {
      this.renew(held);
      return { record: held, source: 'l2' };
    }
    if (cached.kind === 'hit') {
      this.fillL1(cached.record);
      if (!held) this.deps.onRead?.('l2');
      return { record: cached.record, source: 'l2' };
    }
    const readStartedAt = performance.now();
    const epoch = await this.deps.cache.epoch().catch(() => undefined);
    const record = await readOrder(this.pickDb(primary), orderId);
    if (!held) this.deps.onRead?.('mysql');
    if (record) {
      this.fillL1(record);
      // Compare-and-set: never backwards, never across a Redis that lost everything meanwhile.
      if (epoch !== undefined) await this.deps.cache.fill(record, epoch, readStartedAt).catch(() => undefined);
    }
    return { record, source: 'mysql' };
  }
}
