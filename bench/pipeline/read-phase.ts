/**
 * The cache under readers: while orders keep coming at the sustainable rate, a reader polls
 * GET /v1/orders/:id over a fixed set of accepted orders (--read-orders, 10,000) at --read-rate.
 * The cache should hold what is read, not what is written: its memory is reported against that
 * many entries' worth (MEMORY USAGE of the read orders' own entries, a sample).
 */
import { performance } from 'node:perf_hooks';
import autocannon, { type RequestParams, type Result } from 'autocannon';
import { fmt, log } from '../lib/log.ts';
import { runOrderLoad, type LoadCounters } from '../lib/order-load.ts';
import { keysMemory, usedMemory, type KeysMemory } from '../lib/redis-keys.ts';
import type { Sampler } from './sampler.ts';
import { CACHE_PREFIX, orderBodies, type World } from './setup.ts';
import type { PipelineSettings } from './settings.ts';

export interface ReadPhase {
  readonly readOrders: number;
  readonly reads: number;
  readonly readsOk: number;
  readonly readP99Ms: number;
  readonly writesAccepted: number;
  readonly writeRate: number;
  readonly seconds: number;
  readonly cacheBefore: KeysMemory;
  readonly cacheAfter: KeysMemory;
  readonly usedMemoryBefore: number;
  readonly usedMemoryAfter: number;
  /** MEMORY USAGE of a read order's cache entry (mean of a sample), and that times the read set. */
  readonly entryBytes: number | null;
  readonly readSetBytes: number | null;
}

function readLoad(world: World, ids: readonly string[], rate: number, seconds: number) {
  let next = 0;
  const path = () => `/v1/orders/${ids[next++ % ids.length]!}`;
  return new Promise<Result>((resolve, reject) => {
    autocannon(
      {
        url: world.fleet.webUrl,
        connections: Math.min(32, rate),
        overallRate: rate,
        duration: seconds,
        ignoreCoordinatedOmission: true,
        requests: [{ method: 'GET', path: path(), headers: { authorization: `Bearer ${world.apiKey}` }, setupRequest: (r: RequestParams) => ({ ...r, path: path() }) }],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

async function entryBytes(world: World, ids: readonly string[]): Promise<number | null> {
  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 200)) === 0).slice(0, 200);
  const pipeline = world.redis.pipeline();
  for (const id of sample) pipeline.call('MEMORY', 'USAGE', `${CACHE_PREFIX}:order:${id}`);
  const sizes = ((await pipeline.exec()) ?? []).map(([, v]) => Number(v ?? 0)).filter((v) => v > 0);
  return sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : null;
}

export async function readPhase(world: World, sampler: Sampler, counters: LoadCounters, s: PipelineSettings, writeRate: number): Promise<ReadPhase | null> {
  const ids = counters.ids.slice(0, s.readOrders);
  if (ids.length === 0) return null;
  log(`\n== reads: ${fmt(ids.length)} accepted orders read over and over (${fmt(s.readRate)} GETs/s) for ${s.readSeconds} s while orders come at ${fmt(writeRate)}/s`);
  sampler.phase = 'reads';
  const [cacheBefore, usedMemoryBefore] = await Promise.all([keysMemory(world.redis, CACHE_PREFIX), usedMemory(world.redis)]);
  const t0 = performance.now();
  const [reads, writes] = await Promise.all([
    readLoad(world, ids, s.readRate, s.readSeconds),
    runOrderLoad({
      url: world.fleet.webUrl,
      apiKey: world.apiKey,
      keyPrefix: `pipe-read-${Date.now().toString(36)}`,
      bodies: orderBodies(world.merchants),
      connections: Math.min(s.connections, writeRate),
      seconds: s.readSeconds,
      rate: { overall: writeRate, stagger: true },
      collectIds: true,
      counters,
      startedAt: t0,
      progressLabel: 'reads + writes',
    }),
  ]);
  const [cacheAfter, usedMemoryAfter, bytes] = await Promise.all([keysMemory(world.redis, CACHE_PREFIX), usedMemory(world.redis), entryBytes(world, ids)]);
  const phase: ReadPhase = {
    readOrders: ids.length,
    reads: reads.requests.total,
    readsOk: reads['2xx'],
    readP99Ms: reads.latency.p99,
    writesAccepted: writes.status202,
    writeRate,
    seconds: (performance.now() - t0) / 1000,
    cacheBefore,
    cacheAfter,
    usedMemoryBefore,
    usedMemoryAfter,
    entryBytes: bytes,
    readSetBytes: bytes === null ? null : bytes * ids.length,
  };
  log(
    `  ${fmt(phase.reads)} GETs (${fmt(phase.readsOk)} 2xx, p99 ${fmt(phase.readP99Ms)} ms), ${fmt(phase.writesAccepted)} orders accepted meanwhile; ` +
      `the cache: ${fmt(cacheBefore.keys)} keys ${fmt(cacheBefore.bytes / 1e6, 1)} MB -> ${fmt(cacheAfter.keys)} keys ${fmt(cacheAfter.bytes / 1e6, 1)} MB, ` +
      `against ${fmt(ids.length)} entries of ~${fmt(bytes)} B = ${fmt((phase.readSetBytes ?? Number.NaN) / 1e6, 1)} MB`,
  );
  return phase;
}
