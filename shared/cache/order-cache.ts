import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from '../redis.ts';
import type { OrderRecord } from '../orders/read-order.ts';
import { isTerminal } from '../orders/state-machine.ts';

const SET_IF_NEWER = readFileSync(new URL('./lua/set-order-if-newer.lua', import.meta.url), 'utf8');
const MARK_STALE = readFileSync(new URL('./lua/mark-stale.lua', import.meta.url), 'utf8');

type CacheCommands = {
  courierSetOrderIfNewer(key: string, epochKey: string, version: number, json: string, ttlMs: number, epoch: string): unknown;
  courierMarkOrderStale(key: string, version: number, ttlMs: number): unknown;
};
type CachePipeline = CacheCommands & { exec(): Promise<[Error | null, unknown][] | null> };

export type CachedOrder =
  | { readonly kind: 'hit'; readonly record: OrderRecord }
  /** The version the caller named, still cached: not parsed again. */
  | { readonly kind: 'same' }
  | { readonly kind: 'stale'; readonly version: number }
  | { readonly kind: 'miss' };

function cachedOrderOf([version, data]: (string | null | undefined)[], heldVersion: number | undefined): CachedOrder {
  if (version === null || version === undefined) return { kind: 'miss' };
  if (!data) return { kind: 'stale', version: Number(version) };
  if (heldVersion !== undefined && Number(version) === heldVersion) return { kind: 'same' };
  return { kind: 'hit', record: JSON.parse(data) as OrderRecord };
}

export interface OrderCacheOptions {
  readonly prefix: string;
  /** How long an order that can still change stays cached after its last fill, in ms. */
  readonly ttlMs: number;
  /** How long a delivered or cancelled order stays cached, in ms: it will not change again, and its readers soon stop. */
  readonly finalTtlMs: number;
}

/**
 * How long a stale mark lives. It only has to outlive the reads already on their way when the
 * change began (a reader between its MySQL read and its fill), and a fill of a read older than
 * FILL_AFTER_READ_MAX_MS is refused, so no read outlives it; an order nobody reads then costs Redis
 * nothing after it. Marks are written for every change, read or not: at 1,500 orders/s a 30 s mark
 * held ~45,000 of them (~6 MB), more than the 10,000 orders being read; 5 s holds a sixth of that.
 */
export const STALE_MARK_TTL_MS = 5_000;

/** The oldest MySQL read a fill may still cache: the stale mark's life, less a second for the fill's own trip. */
export const FILL_AFTER_READ_MAX_MS = STALE_MARK_TTL_MS - 1_000;

/**
 * L2: orders in Redis, each entry carrying the row's version. Writes go through a compare-and-set
 * (lua/set-order-if-newer.lua), so cached versions never go backwards whatever the order in which
 * writers and readers arrive, and a paused writer can never put old data back. The cache holds
 * what readers read: readers fill it, writers mark it stale and reload only what was there, so its
 * memory follows the readers, not the rate of changes.
 */
export class OrderCache {
  private readonly redis: Redis & CacheCommands;
  private readonly opts: OrderCacheOptions;

  constructor(redis: Redis, opts: OrderCacheOptions) {
    if (!('courierSetOrderIfNewer' in redis)) redis.defineCommand('courierSetOrderIfNewer', { numberOfKeys: 2, lua: SET_IF_NEWER });
    if (!('courierMarkOrderStale' in redis)) redis.defineCommand('courierMarkOrderStale', { numberOfKeys: 1, lua: MARK_STALE });
    this.redis = redis as Redis & CacheCommands;
    this.opts = opts;
  }

  key(orderId: string): string {
    return `${this.opts.prefix}:order:${orderId}`;
  }

  private get epochKey(): string {
    return `${this.opts.prefix}:epoch`;
  }

  /**
   * The cache's current epoch, made if Redis has none (it started empty). Read it before reading
   * MySQL and hand it to fill(): a fill from before Redis lost everything is refused.
   */
  async epoch(): Promise<string> {
    const existing = await this.redis.get(this.epochKey);
    if (existing) return existing;
    await this.redis.set(this.epochKey, randomUUID(), 'NX');
    return (await this.redis.get(this.epochKey)) ?? '';
  }

  /** `heldVersion`: the version the caller holds; if that is the one cached, the answer is 'same'. */
  async get(orderId: string, heldVersion?: number): Promise<CachedOrder> {
    return cachedOrderOf(await this.redis.hmget(this.key(orderId), 'v', 'd'), heldVersion);
  }

  /** get() of many orders in one round trip (one command per key: in a Redis Cluster they live in different slots). */
  async getMany(orders: readonly { readonly orderId: string; readonly heldVersion?: number }[]): Promise<CachedOrder[]> {
    const pipeline = this.redis.pipeline();
    for (const { orderId } of orders) pipeline.hmget(this.key(orderId), 'v', 'd');
    return ((await pipeline.exec()) ?? []).map(([error, fields], i) => {
      if (error) throw error;
      return cachedOrderOf(fields as (string | null)[], orders[i]!.heldVersion);
    });
  }

  /**
   * Caches the order unless a newer version (or a stale mark of this one) is there, or Redis was
   * emptied since `epoch` was read.
   */
  async fill(record: OrderRecord, epoch: string, readStartedAt?: number): Promise<boolean> {
    return (await this.fillMany([record], epoch, readStartedAt)) === 1;
  }

  /**
   * Caches many orders in one round trip, as fill() does each; resolves with how many were written.
   * `readStartedAt` (performance.now() before the MySQL read): a read older than
   * FILL_AFTER_READ_MAX_MS may predate a change whose stale mark has expired, so it is not cached.
   */
  async fillMany(records: readonly OrderRecord[], epoch: string, readStartedAt?: number): Promise<number> {
    if (records.length === 0) return 0;
    if (readStartedAt !== undefined && performance.now() - readStartedAt > FILL_AFTER_READ_MAX_MS) return 0;
    const pipeline = this.redis.pipeline() as unknown as CachePipeline;
    for (const record of records) {
      const { order } = record;
      const ttlMs = isTerminal(order.status) ? this.opts.finalTtlMs : this.opts.ttlMs;
      pipeline.courierSetOrderIfNewer(this.key(order.id), this.epochKey, order.version, JSON.stringify(record), ttlMs, epoch);
    }
    let written = 0;
    for (const [error, result] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      if (result === 1) written += 1;
    }
    return written;
  }

  /** Drops entries, data and stale marks alike, as their TTL would: a cold key (benches, tests, an operator's reset). */
  async evict(orderIds: readonly string[]): Promise<void> {
    if (orderIds.length === 0) return;
    // One DEL per key: in a Redis Cluster they live in different slots.
    const pipeline = this.redis.pipeline();
    for (const id of orderIds) pipeline.del(this.key(id));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  /**
   * Marks these versions stale ahead of a change, in one round trip (one command per key: in a
   * Redis Cluster they live in different slots). Answers, per order, whether a reader had it cached:
   * only those are reloaded after the change.
   */
  async markStaleMany(orders: readonly { readonly id: string; readonly version: number }[]): Promise<boolean[]> {
    if (orders.length === 0) return [];
    const pipeline = this.redis.pipeline() as unknown as CachePipeline;
    for (const order of orders) pipeline.courierMarkOrderStale(this.key(order.id), order.version, STALE_MARK_TTL_MS);
    return ((await pipeline.exec()) ?? []).map(([error, result]) => {
      if (error) throw error;
      return result !== 0; // -1 (a newer version cached) is reloaded too: the compare-and-set sorts it out
    });
  }
}
