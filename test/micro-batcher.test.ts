import { describe, expect, it, vi } from 'vitest';
import { MicroBatcher, type ItemOutcome } from '../shared/micro-batcher.ts';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('MicroBatcher', () => {
  it('sends a full batch at once, without waiting for the timer', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((i) => ({ ok: true, value: i * 2 }));
      },
      { maxSize: 3, maxWaitMs: 60_000, maxInFlight: 1 },
    );
    const results = await Promise.all([1, 2, 3].map((i) => batcher.submit(i)));
    expect(results).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('sends a partial batch when its first item has waited maxWaitMs, not before; what arrives meanwhile joins it', async () => {
    vi.useFakeTimers();
    try {
      const batches: number[][] = [];
      const batcher = new MicroBatcher<number, number>(
        async (items) => {
          batches.push(items);
          return items.map((i) => ({ ok: true, value: i }));
        },
        { maxSize: 100, maxWaitMs: 50, maxInFlight: 1 },
      );
      const first = batcher.submit(1);
      await vi.advanceTimersByTimeAsync(30);
      const second = batcher.submit(2); // within the first one's wait: the wait is not started again
      await vi.advanceTimersByTimeAsync(19); // 49 ms after the first
      expect(batches).toEqual([]);
      expect(batcher.size).toBe(2);
      await vi.advanceTimersByTimeAsync(1); // 50 ms after the first
      expect(batches).toEqual([[1, 2]]);
      expect(await Promise.all([first, second])).toEqual([1, 2]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers each item on its own: one failure does not fail its neighbours', async () => {
    const batcher = new MicroBatcher<number, number>(
      async (items) =>
        items.map((i): ItemOutcome<number> => (i === 2 ? { ok: false, error: new Error('bad item 2') } : { ok: true, value: i })),
      { maxSize: 3, maxWaitMs: 1, maxInFlight: 1 },
    );
    const results = await Promise.allSettled([1, 2, 3].map((i) => batcher.submit(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('fails every item of a batch whose handler throws, and keeps working after', async () => {
    let fail = true;
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        if (fail) throw new Error('database down');
        return items.map((i) => ({ ok: true, value: i }));
      },
      { maxSize: 2, maxWaitMs: 1, maxInFlight: 1 },
    );
    const failed = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(failed.every((r) => r.status === 'rejected' && r.reason.message === 'database down')).toBe(true);
    fail = false;
    expect(await batcher.submit(3)).toBe(3);
  });

  it('holds at most maxInFlight batches out; what queues meanwhile leaves together', async () => {
    const gate = deferred();
    const firstStarted = deferred();
    const batches: number[][] = [];
    let inFlight = 0;
    let maxSeen = 0;
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        batches.push(items);
        inFlight += 1;
        maxSeen = Math.max(maxSeen, inFlight);
        if (batches.length === 1) {
          firstStarted.resolve();
          await gate.promise;
        }
        inFlight -= 1;
        return items.map((i) => ({ ok: true, value: i }));
      },
      { maxSize: 100, maxWaitMs: 0, maxInFlight: 1 },
    );
    const first = batcher.submit(0);
    await firstStarted.promise;
    const rest = [1, 2, 3, 4].map((i) => batcher.submit(i));
    expect(batches).toEqual([[0]]);
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[0], [1, 2, 3, 4]]);
    expect(maxSeen).toBe(1);
    await batcher.idle();
  });
});
