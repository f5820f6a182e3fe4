import { randomBytes } from 'node:crypto';
import { priceJobId } from '../queues/job-ids.ts';

/** A price batch being filled: the orders a web process commits within a few ms, in one job. */
export interface PriceSlot {
  /** The job every row committed in the slot names (orders.price_job_id), before it is written. */
  readonly jobId: string;
  /** The batch's name, from which the job id follows. */
  readonly batch: string;
}

interface OpenSlot extends PriceSlot {
  readonly orderIds: string[];
  /** Rows assigned to the slot so far (committed or not yet). */
  assigned: number;
  /** Commits assigned to the slot that have not settled yet. */
  pending: number;
  closed: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Groups the intake's committed micro-batches into price batch jobs: a slot opens with the first
 * commit after the last one closed, takes every commit that starts within `waitMs` (up to `max`
 * orders), and is enqueued as one job once it has closed and every commit in it has settled, with
 * the orders that committed. Every row names the slot's job before it is written, so the rows are
 * the outbox from the start: a slot whose enqueue never happens is found by the reconciler.
 *
 * At a lunch peak the intake commits every few ms a handful of orders, to keep its 202s fast; a
 * job costs as much CPU as an order's whole processing, so a job per commit would cost more than
 * the orders it carries. A slot of 50 ms carries 75 orders at 1,500/s.
 */
export class PriceSlots {
  private readonly token = randomBytes(5).toString('hex');
  private readonly opts: { readonly waitMs: number; readonly max: number; readonly enqueue: (slot: PriceSlot, orderIds: readonly string[]) => void };
  private count = 0;
  private current: OpenSlot | undefined;

  constructor(opts: { readonly waitMs: number; readonly max: number; readonly enqueue: (slot: PriceSlot, orderIds: readonly string[]) => void }) {
    this.opts = opts;
  }

  /** The slot a commit of `rows` orders goes into; settle() it with the orders that committed. */
  join(rows: number): PriceSlot {
    let slot = this.current;
    if (!slot || slot.assigned + rows > this.opts.max) {
      if (slot) this.close(slot);
      slot = this.open();
    }
    slot.assigned += rows;
    slot.pending += 1;
    if (slot.assigned >= this.opts.max) this.close(slot);
    return slot;
  }

  /** A commit of the slot has settled: `committed` are the orders it wrote (none if it failed). */
  settle(joined: PriceSlot, committed: readonly string[]): void {
    const slot = joined as OpenSlot;
    slot.orderIds.push(...committed);
    slot.pending -= 1;
    if (slot.closed && slot.pending === 0) this.flush(slot);
  }

  /** Closes the open slot now (shutdown, a test waiting for its orders): it is enqueued once its commits settle. */
  closeOpen(): void {
    if (this.current) this.close(this.current);
  }

  private open(): OpenSlot {
    const batch = `${this.token}-${++this.count}`;
    const slot: OpenSlot = { batch, jobId: priceJobId({ orderIds: [], attempt: 0, batch }), orderIds: [], assigned: 0, pending: 0, closed: false, timer: undefined };
    slot.timer = setTimeout(() => this.close(slot), this.opts.waitMs);
    slot.timer.unref();
    this.current = slot;
    return slot;
  }

  private close(slot: OpenSlot): void {
    if (slot.closed) return;
    slot.closed = true;
    clearTimeout(slot.timer);
    if (this.current === slot) this.current = undefined;
    if (slot.pending === 0) this.flush(slot);
  }

  private flush(slot: OpenSlot): void {
    if (slot.orderIds.length > 0) this.opts.enqueue(slot, slot.orderIds);
  }
}
