/**
 * Valid orders at a steady rate, each under a new Idempotency-Key, sent as a careful client does:
 * a 503 (or no answer, or a 429) is sent again with the same key and body until it is answered 202
 * or `retryForMs` has passed since its first try (then it is given up). Every attempt's answer is
 * kept (the latencies and the codes of the run), and every key's one order id.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { post, type Answer } from './post.ts';

export interface OrderTrafficOptions {
  readonly url: string;
  readonly apiKey: string;
  readonly bodies: readonly string[];
  /** Keys are `${keyPrefix}-${n}`. */
  readonly keyPrefix: string;
  /** New orders per second. */
  readonly rate: number;
  readonly boundMs: number;
  readonly retryForMs: number;
}

export interface KeyState {
  readonly body: string;
  readonly firstSentAt: number;
  /** The id its 202 named (null until then). */
  id: string | null;
  attempts: number;
  gaveUp: boolean;
}

export class OrderTraffic {
  readonly keys = new Map<string, KeyState>();
  /** Every attempt's answer, in the order they came. */
  readonly answers: Answer[] = [];
  /** Keys answered 202 with two different ids (must stay empty). */
  readonly twoIds: string[] = [];
  private sequence = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly opts: OrderTrafficOptions;

  constructor(opts: OrderTrafficOptions) {
    this.opts = opts;
  }

  get headers(): Record<string, string> {
    return { 'content-type': 'application/json', authorization: `Bearer ${this.opts.apiKey}` };
  }

  /** Ids answered 202, one per key. */
  acceptedIds(): string[] {
    return [...this.keys.values()].flatMap((k) => (k.id === null ? [] : [k.id]));
  }

  start(): void {
    const t0 = performance.now();
    this.loop = (async () => {
      for (let n = 0; !this.stopped; n++) {
        const due = t0 + (n * 1000) / this.opts.rate;
        if (due > performance.now()) await sleep(due - performance.now()); // the rate's pace, not a wait for a condition
        if (this.stopped) break;
        this.sequence += 1;
        this.track(this.submit(`${this.opts.keyPrefix}-${this.sequence}`, this.opts.bodies[this.sequence % this.opts.bodies.length]!));
      }
    })();
  }

  /** Stops sending new orders; resolves once every order sent has its last answer (or was given up). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Records a 202 another sender got for a new key of its own (the duplicates of the requests scenario). */
  recordAccepted(key: string, body: string, id: string, sentAt: number): void {
    const known = this.keys.get(key);
    if (known?.id && known.id !== id) this.twoIds.push(key);
    if (!known) this.keys.set(key, { body, firstSentAt: sentAt, id, attempts: 1, gaveUp: false });
  }

  private track(work: Promise<void>): void {
    const tracked = work.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async submit(key: string, body: string): Promise<void> {
    const state: KeyState = { body, firstSentAt: performance.now(), id: null, attempts: 0, gaveUp: false };
    this.keys.set(key, state);
    for (;;) {
      state.attempts += 1;
      const answer = await post(this.opts.url, { headers: { ...this.headers, 'idempotency-key': key }, body }, this.opts.boundMs);
      this.answers.push(answer);
      if (answer.status === 202 && answer.id) {
        if (state.id !== null && state.id !== answer.id) this.twoIds.push(key);
        state.id = answer.id;
        return;
      }
      // A 4xx (other than 429) to a valid order is an answer, and wrong: the checks count it; no retry.
      const retryable = answer.status === 0 || answer.status === 429 || answer.status >= 500;
      if (!retryable) return;
      if (performance.now() - state.firstSentAt > this.opts.retryForMs) {
        state.gaveUp = true;
        return;
      }
      await sleep(Math.min(1000, 200 * state.attempts)); // a client's backoff before its retry
    }
  }
}
