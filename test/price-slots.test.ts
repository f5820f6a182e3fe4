import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PriceSlots, type PriceSlot } from '../shared/orders/price-slots.ts';

let enqueued: { jobId: string; batch: string; orderIds: string[] }[];
const slots = (opts: { waitMs?: number; max?: number } = {}) =>
  new PriceSlots({
    waitMs: opts.waitMs ?? 50,
    max: opts.max ?? 500,
    enqueue: (slot: PriceSlot, orderIds) => void enqueued.push({ jobId: slot.jobId, batch: slot.batch, orderIds: [...orderIds] }),
  });

beforeEach(() => {
  enqueued = [];
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('price slots: the intake commits that ride in one price job', () => {
  it('gathers the commits that start within the wait into one job, enqueued once the last of them settles', () => {
    const s = slots();
    const a = s.join(3);
    const b = s.join(2);
    expect(b.jobId).toBe(a.jobId);
    expect(a.jobId).toBe(`price-${a.batch}`);
    s.settle(a, ['1', '2', '3']);
    vi.advanceTimersByTime(50); // closed, but one commit is still out
    expect(enqueued).toEqual([]);
    s.settle(b, ['4', '5']);
    expect(enqueued).toEqual([{ jobId: a.jobId, batch: a.batch, orderIds: ['1', '2', '3', '4', '5'] }]);
    const next = s.join(1); // after the wait: a new slot, a new job
    expect(next.jobId).not.toBe(a.jobId);
  });

  it('enqueues only the orders that committed, and nothing for a slot whose commits all failed', () => {
    const s = slots();
    const a = s.join(2);
    const b = s.join(2);
    s.settle(a, []); // rolled back: MySQL away
    s.settle(b, ['7']); // one repeated key resolved to an existing order
    vi.advanceTimersByTime(50);
    expect(enqueued).toEqual([{ jobId: a.jobId, batch: a.batch, orderIds: ['7'] }]);
    const failed = s.join(1);
    s.settle(failed, []);
    vi.advanceTimersByTime(50);
    expect(enqueued).toHaveLength(1);
  });

  it('closes a slot at its size: the next commit opens another', () => {
    const s = slots({ max: 5 });
    const a = s.join(3);
    const b = s.join(3); // would make 6
    expect(b.jobId).not.toBe(a.jobId);
    s.settle(a, ['1', '2', '3']);
    expect(enqueued.map((job) => job.orderIds)).toEqual([['1', '2', '3']]); // closed by b, settled: enqueued at once
    const full = s.join(2); // b holds 3 + 2 = 5: full, closed at once
    expect(full.jobId).toBe(b.jobId);
    s.settle(b, ['4', '5', '6']);
    s.settle(full, ['8', '9']);
    expect(enqueued.map((job) => job.orderIds)).toEqual([['1', '2', '3'], ['4', '5', '6', '8', '9']]);
  });

  it('closeOpen() enqueues the open slot as soon as its commits settle, without waiting out its time', () => {
    const s = slots({ waitMs: 10_000 });
    const a = s.join(1);
    s.closeOpen();
    expect(enqueued).toEqual([]);
    s.settle(a, ['1']);
    expect(enqueued.map((job) => job.orderIds)).toEqual([['1']]);
  });
});
