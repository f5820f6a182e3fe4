/**
 * Redis memory after many orders went through with nobody reading: used_memory before the first
 * step and after everything drained, once at least --memory-orders were processed end to end. The
 * steps' orders count; the rest are posted at the sustainable rate (bounded), then drained. The
 * growth is split into the queues' keys, the cache's keys and the rest.
 */
import { performance } from 'node:perf_hooks';
import type { Db } from '../../shared/db.ts';
import { fmt, log } from '../lib/log.ts';
import { runOrderLoad, type LoadCounters } from '../lib/order-load.ts';
import { keysMemory, usedMemory, type KeysMemory } from '../lib/redis-keys.ts';
import type { BenchRun } from '../lib/run-bench.ts';
import type { Sampler } from './sampler.ts';
import { CACHE_PREFIX, orderBodies, QUEUE_PREFIX, type World } from './setup.ts';
import { drain } from './steps.ts';
import type { PipelineSettings } from './settings.ts';

export interface RedisState {
  readonly usedMemory: number;
  readonly queues: KeysMemory;
  readonly cache: KeysMemory;
}

export async function redisState(world: World): Promise<RedisState> {
  const [used, queues, cache] = await Promise.all([usedMemory(world.redis), keysMemory(world.redis, QUEUE_PREFIX), keysMemory(world.redis, CACHE_PREFIX)]);
  return { usedMemory: used, queues, cache };
}

export async function processedOrders(db: Db): Promise<number> {
  const rows = ((await db.raw("SELECT COUNT(*) AS n FROM orders WHERE status NOT IN ('CREATED', 'PRICED')")) as [{ n: number | string }[]])[0];
  return Number(rows[0]?.n ?? 0);
}

export interface MemoryTopUp {
  readonly posted: number;
  readonly rate: number;
  readonly seconds: number;
  readonly drained: boolean;
}

/** Posts what is missing to reach the target at the rate given (within the bound), then drains. */
export async function topUp(world: World, sampler: Sampler, counters: LoadCounters, s: PipelineSettings, rate: number, run: BenchRun): Promise<MemoryTopUp | null> {
  const missing = s.memoryOrders - (await processedOrders(world.db));
  if (missing <= 0) return null;
  const loadBoundS = Math.max(1, Math.min(s.memoryBoundS * 0.7, run.secondsLeft() - s.drainBoundS - 120));
  const seconds = Math.max(1, Math.min(Math.ceil(missing / rate), Math.floor(loadBoundS)));
  log(`\n== memory: ${fmt(missing)} more orders to reach ${fmt(s.memoryOrders)} processed; posting ${fmt(rate * seconds)} at ${fmt(rate)}/s for ${seconds} s, nobody reading`);
  sampler.phase = 'memory top-up';
  const t0 = performance.now();
  const load = await runOrderLoad({
    url: world.fleet.webUrl,
    apiKey: world.apiKey,
    keyPrefix: `pipe-mem-${Date.now().toString(36)}`,
    bodies: orderBodies(world.merchants),
    connections: Math.min(s.connections, rate),
    seconds,
    rate: { overall: rate, stagger: true },
    collectIds: true,
    counters,
    startedAt: t0,
    progressLabel: 'memory top-up',
  });
  const drained = await drain(world, sampler, Math.max(10, s.memoryBoundS - (performance.now() - t0) / 1000), run);
  log(`  posted ${fmt(load.status202)}; ${drained.drained ? `drained in ${fmt(drained.seconds, 1)} s` : 'NOT drained within the bound'}`);
  return { posted: load.status202, rate, seconds, drained: drained.drained };
}
