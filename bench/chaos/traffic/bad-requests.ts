/**
 * Duplicates and bad requests at a steady rate, beside the valid orders: each kind in turn, each
 * with the one answer the contract gives it. A duplicate (a key already answered 202, with its
 * body) must be answered 202 with the first id; two requests racing with a new key must both get
 * one id; every bad request its 4xx and code, and nothing written.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OrderTraffic } from './order-traffic.ts';
import { label, post, type Answer } from './post.ts';

export interface BadKind {
  readonly name: string;
  /** "202 same id" for duplicates, else "<status> <CODE>". */
  readonly expected: string;
}

export interface KindTally {
  sent: number;
  right: number;
  /** Answers that were not the expected one (429s aside), by label: what came instead. */
  readonly wrong: Map<string, number>;
  /** 429 RATE_LIMITED: a limiter in front answered; neither right nor wrong. */
  limited: number;
}

type Sender = (n: number) => Promise<{ ok: boolean; answers: Answer[] }>;

export class BadRequests {
  readonly tallies = new Map<string, KindTally>();
  /** Every answer, for the latencies. */
  readonly answers: Answer[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly kinds: readonly (BadKind & { readonly send: Sender })[];
  private readonly traffic: OrderTraffic;

  constructor(url: string, traffic: OrderTraffic, opts: { readonly body: string; readonly bodyLimitBytes: number; readonly boundMs: number; readonly keyPrefix: string }) {
    this.traffic = traffic;
    const valid = traffic.headers;
    const body = JSON.parse(opts.body) as Record<string, unknown>;
    const json = (b: unknown) => JSON.stringify(b);
    const expect = async (status: number, code: string, headers: Record<string, string>, text: string) => {
      const answer = await post(url, { headers, body: text }, opts.boundMs);
      return { ok: answer.status === status && answer.code === code, answers: [answer] };
    };
    const key = (n: number) => `${opts.keyPrefix}-${n}`;
    this.kinds = [
      { name: 'malformed JSON', expected: '400 INVALID_JSON', send: (n) => expect(400, 'INVALID_JSON', { ...valid, 'idempotency-key': key(n) }, '{"merchantId": "90') },
      { name: 'schema broken', expected: '400 VALIDATION_FAILED', send: (n) => expect(400, 'VALIDATION_FAILED', { ...valid, 'idempotency-key': key(n) }, json({ ...body, dropoff: 'north' })) },
      { name: 'no Idempotency-Key', expected: '400 IDEMPOTENCY_KEY_REQUIRED', send: () => expect(400, 'IDEMPOTENCY_KEY_REQUIRED', valid, json(body)) },
      // (text/plain would be read as a string, by Fastify's own parser, and fail the schema instead.)
      { name: 'not JSON', expected: '400 UNSUPPORTED_CONTENT_TYPE', send: (n) => expect(400, 'UNSUPPORTED_CONTENT_TYPE', { ...valid, 'content-type': 'application/xml', 'idempotency-key': key(n) }, '<order/>') },
      {
        name: 'oversized',
        expected: '413 PAYLOAD_TOO_LARGE',
        send: (n) => expect(413, 'PAYLOAD_TOO_LARGE', { ...valid, 'idempotency-key': key(n) }, json({ ...body, note: 'x'.repeat(opts.bodyLimitBytes + 1) })),
      },
      { name: 'no API key', expected: '401 UNAUTHORIZED', send: (n) => expect(401, 'UNAUTHORIZED', { 'content-type': 'application/json', 'idempotency-key': key(n) }, json(body)) },
      { name: 'unknown API key', expected: '401 UNAUTHORIZED', send: (n) => expect(401, 'UNAUTHORIZED', { ...valid, authorization: 'Bearer not-a-key', 'idempotency-key': key(n) }, json(body)) },
      { name: 'unknown merchant', expected: '422 UNKNOWN_MERCHANT', send: (n) => expect(422, 'UNKNOWN_MERCHANT', { ...valid, 'idempotency-key': key(n) }, json({ ...body, merchantId: '8999' })) },
      {
        name: 'key reused, other body',
        expected: '422 IDEMPOTENCY_KEY_REUSED',
        send: async (n) => {
          const [usedKey, state] = this.acceptedKey(n);
          const other = { ...(JSON.parse(state.body) as Record<string, unknown>), note: `another body ${n}` };
          return expect(422, 'IDEMPOTENCY_KEY_REUSED', { ...valid, 'idempotency-key': usedKey }, json(other));
        },
      },
      {
        name: 'duplicate',
        expected: '202 the first id',
        send: async (n) => {
          const [usedKey, state] = this.acceptedKey(n);
          const answer = await post(url, { headers: { ...valid, 'idempotency-key': usedKey }, body: state.body }, opts.boundMs);
          return { ok: answer.status === 202 && answer.id === state.id && answer.replayed, answers: [answer] };
        },
      },
      {
        name: 'racing duplicates',
        expected: '202 x2, one id',
        send: async (n) => {
          const racingKey = `${key(n)}-race`;
          const racingBody = json({ ...body, note: `racing ${n}` });
          const sentAt = performance.now();
          const pair = await Promise.all([0, 1].map(() => post(url, { headers: { ...valid, 'idempotency-key': racingKey }, body: racingBody }, opts.boundMs)));
          const [a, b] = pair as [Answer, Answer];
          const ok = a.status === 202 && b.status === 202 && a.id !== null && a.id === b.id && a.replayed !== b.replayed;
          if (a.status === 202 && a.id) traffic.recordAccepted(racingKey, racingBody, a.id, sentAt);
          if (b.status === 202 && b.id) traffic.recordAccepted(racingKey, racingBody, b.id, sentAt);
          return { ok, answers: pair };
        },
      },
    ];
    for (const kind of this.kinds) this.tallies.set(kind.name, { sent: 0, right: 0, wrong: new Map(), limited: 0 });
  }

  get kindList(): readonly BadKind[] {
    return this.kinds;
  }

  /** Sends `rate` requests a second, the kinds in turn, until stop(). */
  start(rate: number): void {
    const t0 = performance.now();
    this.loop = (async () => {
      for (let n = 0; !this.stopped; n++) {
        const due = t0 + (n * 1000) / rate;
        if (due > performance.now()) await sleep(due - performance.now()); // the rate's pace
        if (this.stopped) break;
        const kind = this.kinds[n % this.kinds.length]!;
        const work = this.sendOne(kind, n).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async sendOne(kind: BadKind & { readonly send: Sender }, n: number): Promise<void> {
    const tally = this.tallies.get(kind.name)!;
    const { ok, answers } = await kind.send(n).catch((error: unknown) => {
      const answer: Answer = { sentAt: performance.now(), ms: 0, status: 0, code: null, id: null, replayed: false, error: `not sent: ${error instanceof Error ? error.message : String(error)}` };
      return { ok: false, answers: [answer] };
    });
    this.answers.push(...answers);
    tally.sent += 1;
    if (ok) tally.right += 1;
    else if (answers.some((a) => a.status === 429)) tally.limited += 1;
    else {
      const what = answers.map((a) => `${label(a)}${a.status === 202 ? ` id ${a.id}${a.replayed ? ' replayed' : ''}` : ''}`).join(' + ');
      tally.wrong.set(what, (tally.wrong.get(what) ?? 0) + 1);
    }
  }

  /** A key the valid traffic got a 202 for (the n-th of them, cycling), with its state. */
  private acceptedKey(n: number): [string, { body: string; id: string }] {
    const accepted = [...this.traffic.keys].filter(([, s]) => s.id !== null);
    if (accepted.length === 0) throw new Error('no order was accepted yet: the duplicates need one');
    const [k, s] = accepted[n % accepted.length]!;
    return [k, { body: s.body, id: s.id! }];
  }
}
