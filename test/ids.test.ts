import { describe, expect, it } from 'vitest';
import { ID_EPOCH_MS, IdGenerator, decodeId, isIdString, shardOf } from '../shared/ids.ts';

describe('IdGenerator', () => {
  it('makes unique 63-bit ids, ordered by time (and strictly within a shard), that carry shard and node', () => {
    const ids = new IdGenerator(7);
    const made = Array.from({ length: 50_000 }, (_, i) => ids.next(i % 64));
    expect(new Set(made).size).toBe(made.length);
    for (let i = 1; i < made.length; i++) {
      expect(decodeId(made[i]!).timestampMs).toBeGreaterThanOrEqual(decodeId(made[i - 1]!).timestampMs);
    }
    for (let i = 64; i < made.length; i++) expect(BigInt(made[i]!) > BigInt(made[i - 64]!)).toBe(true);
    for (const id of made.slice(0, 100)) {
      expect(BigInt(id) < 2n ** 63n).toBe(true);
      expect(isIdString(id)).toBe(true);
    }
    const decoded = decodeId(made[65]!);
    expect(decoded.node).toBe(7);
    expect(decoded.shard).toBe(1);
    expect(Math.abs(decoded.timestampMs - Date.now())).toBeLessThan(60_000);
  });

  it('keeps ids increasing when the clock steps back or a millisecond runs out of sequence', () => {
    let now = ID_EPOCH_MS + 1_000_000;
    const ids = new IdGenerator(1, () => now);
    const made: bigint[] = [];
    for (let i = 0; i < 3000; i++) made.push(BigInt(ids.next(0))); // 3,000 ids in one frozen millisecond
    now -= 500; // the clock steps back
    for (let i = 0; i < 10; i++) made.push(BigInt(ids.next(0)));
    for (let i = 1; i < made.length; i++) expect(made[i]! > made[i - 1]!).toBe(true);
  });

  it('refuses a node id that does not fit', () => {
    expect(() => new IdGenerator(64)).toThrow(RangeError);
  });
});

describe('shardOf and isIdString', () => {
  it('spreads keys over every shard, stably', () => {
    const shards = new Set(Array.from({ length: 5000 }, (_, i) => shardOf(String(1000 + i), 64)));
    expect(shards.size).toBe(64);
    expect(shardOf('1001', 64)).toBe(shardOf('1001', 64));
  });

  it('accepts decimal ids that fit a signed 64-bit integer only', () => {
    expect(isIdString('1')).toBe(true);
    expect(isIdString('9223372036854775807')).toBe(true);
    expect(isIdString('999999999999999999')).toBe(true);
    for (const bad of ['0', '-1', '01', '9223372036854775808', '9999999999999999999', '10000000000000000000', '1e3', ' 1', 'abc', '']) expect(isIdString(bad), bad).toBe(false);
  });
});
