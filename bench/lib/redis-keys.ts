/** A bench's own keys in a Redis it may share: found with SCAN MATCH under its prefixes, never FLUSHALL. */
import type { Redis } from 'ioredis';

/** Deletes every key under the prefixes (SCAN + DEL, a page at a time); resolves with how many. */
export async function deleteKeysUnder(redis: Redis, prefixes: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

export interface KeysMemory {
  readonly keys: number;
  readonly bytes: number;
  /** Keys and bytes by kind: the key's part after the prefix, up to its next ':' (order, rider, wait, events, ...). */
  readonly byKind: Record<string, { keys: number; bytes: number }>;
}

/** The keys under a prefix and their memory (MEMORY USAGE, pipelined per SCAN page). */
export async function keysMemory(redis: Redis, prefix: string): Promise<KeysMemory> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  const byKind: Record<string, { keys: number; bytes: number }> = {};
  do {
    const [next, page] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of page) pipeline.call('MEMORY', 'USAGE', key);
    const sizes = (await pipeline.exec()) ?? [];
    page.forEach((key, i) => {
      const size = Number(sizes[i]?.[1] ?? 0);
      const kind = key.slice(prefix.length + 1).split(':')[0] || '(none)';
      const entry = (byKind[kind] ??= { keys: 0, bytes: 0 });
      entry.keys += 1;
      entry.bytes += size;
      keys += 1;
      bytes += size;
    });
  } while (cursor !== '0');
  return { keys, bytes, byKind };
}

/** INFO memory's used_memory, in bytes. */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1] ?? Number.NaN);
}

/** The pid of the Redis a client talks to (INFO server), when it runs on this machine; null otherwise. */
export async function redisPid(redis: Redis): Promise<number | null> {
  const pid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1] ?? Number.NaN);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}
