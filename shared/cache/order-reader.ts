import { LRUCache } from 'lru-cache';
import type { Db } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import { readOrder, type OrderRecord } from '../orders/read-order.ts';
import type { Redis } from '../redis.ts';
import type { OrderCache } from './order-cache.ts';

export type ReadSource = 'l1' | 'l2' | 'mysql';

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
  /** false: every read goes straight to MySQL (ORDER_CACHE=off). Default true */
  readonly enabled?: boolean;
}

/**
 * The read path of order status: L1 (this process's memory, a short TTL and a size bound) ->
 * L2 (Redis) -> MySQL (a replica when one is configured; the primary right after the client's own
 * write). Concurrent misses of one order share one load (single-flight), so a cold key under a
 * thousand readers costs one query. Writers publish an invalidation that drops L1 copies older
 * than the new version in every process; the TTL bounds the lag if one is lost.
 */
export class OrderReader {
  private readonly l1: LRUCache<string, OrderRecord>;
  private readonly loading = new Map<string, Promise<{ record: OrderRecord | undefined; source: ReadSource }>>();
  /** The newest version an invalidation named while the order's load was on its way (see fillL1). */
  private readonly heardWhileLoading = new Map<string, number>();

  private readonly deps: OrderReaderDeps;

  constructor(deps: OrderReaderDeps) {
    this.deps = deps;
    this.l1 = new LRUCache({ max: deps.l1Max, ttl: Math.max(1, deps.l1TtlMs) });
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
    // A load on its way may bring back the version this drops: it must not keep it (fillL1).
    if (this.loading.has(orderId)) this.heardWhileLoading.set(orderId, Math.max(version, this.heardWhileLoading.get(orderId) ?? 0));
  }

  /** A writer in this process tells the reader at once (its own publish arrives later). */
  remember(record: OrderRecord): void {
    const held = this.l1.peek(record.order.id);
    if (!held || held.order.version < record.order.version) this.l1.set(record.order.id, record);
  }

  /**
   * This process's copy, if it holds one, without waiting (counted as an L1 read): the hot path
   * of a read, which then needs no promise and no deadline. undefined: ask get().
   */
  peek(orderId: string): OrderRecord | undefined {
    if (this.deps.enabled === false) return undefined;
    const held = this.l1.get(orderId);
    if (held) this.deps.onRead?.('l1');
    return held;
  }

  async get(orderId: string, opts: { primary?: boolean } = {}): Promise<{ record: OrderRecord | undefined; source: ReadSource }> {
    if (this.deps.enabled === false) {
      this.deps.onRead?.('mysql');
      return { record: await readOrder(this.pickDb(opts.primary === true), orderId), source: 'mysql' };
    }
    const held = this.l1.get(orderId);
    if (held) {
      this.deps.onRead?.('l1');
      return { record: held, source: 'l1' };
    }
    let load = this.loading.get(orderId);
    if (!load) {
      load = this.load(orderId, opts.primary === true).finally(() => {
        this.loading.delete(orderId);
        this.heardWhileLoading.delete(orderId);
      });
      this.loading.set(orderId, load);
    }
    return load;
  }

  async close(): Promise<void> {
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

  private pickDb(primary: boolean): Db {
    return primary || !this.deps.replica ? this.deps.primary : this.deps.replica;
  }

  private async load(orderId: string, primary: boolean): Promise<{ record: OrderRecord | undefined; source: ReadSource }> {
    const cached = await this.deps.cache.get(orderId).catch((error: unknown) => {
      // Redis away: the order is still in MySQL.
      this.deps.logger.debug({ err: coerceError(error), orderId }, 'L2 read failed; reading MySQL');
      return { kind: 'miss' } as const;
    });
    if (cached.kind === 'hit') {
      this.fillL1(cached.record);
      this.deps.onRead?.('l2');
      return { record: cached.record, source: 'l2' };
    }
    const readStartedAt = performance.now();
    const epoch = await this.deps.cache.epoch().catch(() => undefined);
    const record = await readOrder(this.pickDb(primary), orderId);
    this.deps.onRead?.('mysql');
    if (record) {
      this.fillL1(record);
      // Compare-and-set: never backwards, never across a Redis that lost everything meanwhile.
      if (epoch !== undefined) await this.deps.cache.fill(record, epoch, readStartedAt).catch(() => undefined);
    }
    return { record, source: 'mysql' };
  }
}
