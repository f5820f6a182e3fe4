/**
 * Phase 2, the cold-key stampede: --stampede concurrent reads of one order in neither L1 nor L2, in
 * process (an OrderReader whose pool counts its queries) and over HTTP (the web's own
 * courier_order_reads_total before and after). Target: exactly one query.
 */
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { OrderCache } from '../../shared/cache/order-cache.ts';
import { OrderReader, type ReadSource } from '../../shared/cache/order-reader.ts';
import type { Config } from '../../shared/config.ts';
import { createDb, type Db } from '../../shared/db.ts';
import { invalidationChannel } from '../../shared/orders/order-writer.ts';
import { text } from '../lib/settings.ts';
import { STAMPEDE, REDIS_URL, HTTP_TIMEOUT_MS } from './settings.ts';

// Phase 2a: the stampede in-process

export interface InProcessStampede {
  readonly orderId: string;
  readonly cache: 'on' | 'off';
  readonly readers: number;
  readonly orderQueries: number;
  readonly allAnswered: boolean;
  readonly ms: number;
}

export async function stampedeInProcess(ctx: { config: Config; cache: OrderCache }, orderId: string, enabled: boolean): Promise<InProcessStampede> {
  // A pool of its own, so the queries counted are this reader's only.
  const db = createDb(ctx.config);
  let orderQueries = 0;
  const count = (query: { sql: string }) => {
    if (/from `orders`/i.test(query.sql)) orderQueries += 1;
  };
  db.on('query', count);
  const reader = new OrderReader({
    cache: ctx.cache,
    primary: db,
    subscriber: new Redis(REDIS_URL, { lazyConnect: true }),
    invalidationChannel: invalidationChannel(ctx.config),
    l1TtlMs: ctx.config.l1TtlMs,
    l1Max: ctx.config.l1Max,
    logger: pino({ level: 'silent' }),
    enabled,
  });
  try {
    await db.raw('SELECT 1'); // the pool's first connection is not part of the stampede
    await ctx.cache.evict([orderId]); // cold: nothing cached for it
    const t0 = performance.now();
    const reads = await Promise.all(Array.from({ length: STAMPEDE }, () => reader.get(orderId)));
    const ms = performance.now() - t0;
    return { orderId, cache: enabled ? 'on' : 'off', readers: STAMPEDE, orderQueries, allAnswered: reads.every((r) => r.record?.order.id === orderId), ms };
  } finally {
    db.off('query', count);
    await reader.close();
    await db.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Phase 2b: the stampede over HTTP

export interface HttpStampede {
  readonly orderId: string;
  readonly requests: number;
  readonly connectionsOpen: number;
  readonly status200: number;
  readonly rightOrder: number;
  readonly ms: number;
  /** courier_order_reads_total deltas over the stampede. */
  readonly reads: Record<ReadSource, number>;
  /** Requests that shared the one load in flight (single-flight: counted by no source). */
  readonly joinedInFlight: number;
  readonly mysqlQueries: number;
  /** MariaDB's global Com_select delta: every session on the server, a coarse upper bound. */
  readonly comSelectDelta: number;
}

export function httpGet(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${HTTP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export async function comSelect(db: Db): Promise<number> {
  const [rows] = (await db.raw("SHOW GLOBAL STATUS LIKE 'Com_select'")) as [{ Value: string }[]];
  return Number(rows[0]?.Value ?? 0);
}

export async function stampedeOverHttp(
  url: string,
  ctx: { db: Db; cache: OrderCache; apiKey: string },
  orderId: string,
  authWarmOrderId: string,
): Promise<HttpStampede> {
  const agent = new Agent({ keepAlive: true, maxSockets: STAMPEDE, maxFreeSockets: STAMPEDE, keepAliveMsecs: 10_000 });
  const auth = { authorization: `Bearer ${ctx.apiKey}` };
  try {
    // The API key is cached by then (another order's GET), and every connection is open and idle.
    const warm = await httpGet(agent, `${url}/v1/orders/${authWarmOrderId}`, auth);
    if (warm.status !== 200) throw new Error(`GET of order ${authWarmOrderId} answered ${warm.status}: ${warm.body}`);
    await Promise.all(Array.from({ length: STAMPEDE }, () => httpGet(agent, `${url}/healthz`)));
    const connectionsOpen = Object.values(agent.freeSockets).reduce((sum, sockets) => sum + (sockets?.length ?? 0), 0);
    await ctx.cache.evict([orderId]); // cold: nothing cached for it
    const before = await scrapeReads(url);
    const comBefore = await comSelect(ctx.db);
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: STAMPEDE }, () => httpGet(agent, `${url}/v1/orders/${orderId}`, auth)));
    const ms = performance.now() - t0;
    const comAfter = await comSelect(ctx.db);
    const after = await scrapeReads(url);
    const reads = readsBetween(before, after);
    if (!reads) throw new Error('could not read courier_order_reads_total from the web process');
    const status200 = answers.filter((a) => a.status === 200).length;
    const rightOrder = answers.filter((a) => a.status === 200 && (JSON.parse(a.body) as { id?: string }).id === orderId).length;
    return {
      orderId,
      requests: STAMPEDE,
      connectionsOpen,
      status200,
      rightOrder,
      ms,
      reads,
      joinedInFlight: STAMPEDE - reads.l1 - reads.l2 - reads.mysql,
      mysqlQueries: reads.mysql,
      comSelectDelta: comAfter - comBefore,
    };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The web's read counters

export type Reads = Record<ReadSource, number>;

export async function scrapeReads(baseUrl: string): Promise<Reads | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) return null;
    const text = await response.text();
    const reads: Reads = { l1: 0, l2: 0, mysql: 0 };
    for (const match of text.matchAll(/^courier_order_reads_total\{([^}]*)\} ([0-9.e+-]+)$/gm)) {
      const source = /source="([^"]+)"/.exec(match[1] ?? '')?.[1];
      if (source === 'l1' || source === 'l2' || source === 'mysql') reads[source] = Number(match[2]);
    }
    return reads;
  } catch {
    return null;
  }
}

export function readsBetween(before: Reads | null, after: Reads | null): Reads | null {
  if (!before || !after) return null;
  return { l1: after.l1 - before.l1, l2: after.l2 - before.l2, mysql: after.mysql - before.mysql };
}

// ---------------------------------------------------------------------------------------------
