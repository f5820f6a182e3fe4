/** The outcome of one item of a batch: a batch handler answers each item on its own. */
export type ItemOutcome<O> = { readonly ok: true; readonly value: O } | { readonly ok: false; readonly error: Error };

export interface MicroBatcherOptions {
  /** Flush as soon as this many items wait. */
  readonly maxSize: number;
  /** Flush this long after the first item of a batch arrived, full or not. */
  readonly maxWaitMs: number;
  /** Batches handled at once; more items wait (and so form bigger batches). */
  readonly maxInFlight: number;
}

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Groups concurrent submissions into batches (group commit): a batch goes out when it is full
 * or its first item has waited maxWaitMs, whichever comes first. While maxInFlight batches are
 * being handled, new items queue up and leave together as soon as a slot frees, so batches grow
 * with load instead of the queue of round trips.
 */
export class MicroBatcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  private readonly handle: (items: I[]) => Promise<ItemOutcome<O>[]>;
  private readonly opts: MicroBatcherOptions;

  constructor(
    handle: (items: I[]) => Promise<ItemOutcome<O>[]>,
    opts: MicroBatcherOptions,
  ) {
    this.handle = handle;
    this.opts = opts;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.opts.maxSize) this.flush();
      else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.opts.maxWaitMs);
    });
  }

  /** Items waiting to be sent in a batch. */
  get size(): number {
    return this.pending.length;
  }

  /** Resolves once nothing waits and no batch is being handled. */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending.length > 0 && this.inFlight < this.opts.maxInFlight) {
      const batch = this.pending.splice(0, this.opts.maxSize);
      this.inFlight += 1;
      void this.run(batch);
    }
  }

  private async run(batch: Pending<I, O>[]): Promise<void> {
    try {
      const outcomes = await this.handle(batch.map((p) => p.item));
      batch.forEach((p, i) => {
        const outcome = outcomes[i];
        if (outcome === undefined) p.reject(new Error('batch handler gave no outcome for an item'));
        else if (outcome.ok) p.resolve(outcome.value);
        else p.reject(outcome.error);
      });
    } catch (error) {
      const cause = error instanceof Error ? error : new Error(String(error));
      for (const p of batch) p.reject(cause);
    } finally {
      this.inFlight -= 1;
      // Whatever queued up while this batch was out has waited long enough: send it now.
      if (this.pending.length > 0) this.flush();
      else if (this.inFlight === 0) this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Batches in flight for a batcher that serves `callers` concurrent callers (a worker's jobs): two,
 * so one batch is handled while the next forms; but with batches of one item (batching off), one
 * per caller, or batching off would also cap the callers' concurrency at two.
 */
export function batchesInFlight(maxSize: number, callers: number): number {
  return maxSize === 1 ? callers : 2;
}
