/**
 * The benches' load: autocannon posting `POST /v1/orders` with a real API key and a unique
 * Idempotency-Key per request, for a set time, as fast as the connections go or at a fixed overall
 * rate, then a clean stop that counts every response the server sent.
 */
import { performance } from 'node:perf_hooks';
import autocannon, { type Client, type RequestParams, type Result } from 'autocannon';
import { stopCleanlyAfter } from './clean-stop.ts';

/** After the time is up, in-flight requests get this long (autocannon's own timeout is 10 s). */
export const LOAD_DRAIN_BOUND_S = 15;

/** Counted as the responses come in (readable during the load). */
export interface LoadCounters {
  responses: number;
  status202: number;
  /** Ids of the orders answered 202 (with collectIds). */
  readonly ids: string[];
  /** 202 answers whose body had no id (with collectIds). */
  badBodies: number;
}

export const newLoadCounters = (): LoadCounters => ({ responses: 0, status202: 0, ids: [], badBodies: 0 });

export interface LoadRun {
  readonly result: Result;
  /** First request sent to last response received, in seconds. */
  readonly windowS: number;
  /** Requests sent, counted from the connections. */
  readonly sent: number;
  readonly responses: number;
  readonly status202: number;
  /** Requests sent that got no response (cut off, timed out or lost with a connection). */
  readonly unanswered: number;
  /** True when the clean stop finished before autocannon's backstop and every request was answered. */
  readonly drained: boolean;
}

export interface OrderLoadOptions {
  readonly url: string;
  readonly apiKey: string;
  /** Request n's Idempotency-Key is `${keyPrefix}-${n}`. */
  readonly keyPrefix: string;
  /** Request n's body is bodies[n % bodies.length]. */
  readonly bodies: readonly string[];
  readonly connections: number;
  readonly seconds: number;
  /**
   * A fixed overall rate (requests/s), latencies recorded as measured. stagger: spread each
   * second's requests evenly instead of autocannon's burst at the start of every second.
   */
  readonly rate?: { readonly overall: number; readonly stagger: boolean };
  /** Parse every 202's body and keep the order id it names (counters.ids). */
  readonly collectIds?: boolean;
  /** What the counters count into (default: new ones). */
  readonly counters?: LoadCounters;
  /** When the load window starts, as performance.now() (default: now). */
  readonly startedAt?: number;
  /** Show a progress line once a second with this label (default: none). */
  readonly progressLabel?: string;
}

export function runOrderLoad(opts: OrderLoadOptions): Promise<LoadRun> {
  const clients: Client[] = [];
  const counters = opts.counters ?? newLoadCounters();
  const { rate } = opts;
  let sequence = 0;
  let lastResponseAt = 0;

  return new Promise<LoadRun>((resolveRun, rejectRun) => {
    const startedAt = opts.startedAt ?? performance.now();
    const instance = autocannon(
      {
        url: opts.url,
        connections: opts.connections,
        pipelining: 1,
        // Rate-limited: latencies as measured, without autocannon's back-filling at 1 ms intervals.
        ...(rate ? { overallRate: rate.overall, ignoreCoordinatedOmission: true } : {}),
        // A backstop only: the timer below stops the load; this cuts off whatever is still out.
        duration: opts.seconds + LOAD_DRAIN_BOUND_S,
        timeout: 10,
        requests: [
          {
            method: 'POST',
            path: '/v1/orders',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.apiKey}` },
            body: opts.bodies[0]!,
            setupRequest: (request: RequestParams) => {
              sequence += 1;
              request.headers = { ...request.headers, 'idempotency-key': `${opts.keyPrefix}-${sequence}` };
              request.body = opts.bodies[sequence % opts.bodies.length]!;
              return request;
            },
            ...(opts.collectIds
              ? {
                  onResponse: (status: number, body: string | Buffer) => {
                    if (status !== 202) return;
                    try {
                      const id = (JSON.parse(String(body)) as { id?: unknown }).id;
                      if (typeof id === 'string') counters.ids.push(id);
                      else counters.badBodies += 1;
                    } catch {
                      counters.badBodies += 1;
                    }
                  },
                }
              : {}),
          },
        ],
        setupClient: (client: Client) => {
          const index = clients.length;
          clients.push(client);
          if (!rate?.stagger || !client.rate) return;
          // autocannon starts every connection's one-second rate window at the same moment, so each
          // second's requests would all leave in a burst at its start. Each connection waits for
          // its own phase in the second instead: the overall rate is the same, spread evenly.
          client.reqsMadeThisSecond = Number.POSITIVE_INFINITY; // its first request waits for its phase
          setImmediate(() => {
            clearInterval(client.rateInterval);
            const tick = () => {
              if (client.destroyed) return;
              client.reqsMadeThisSecond = 0;
              if (client.paused) {
                client.paused = false;
                client._doRequest();
              }
            };
            setTimeout(() => {
              if (client.destroyed) return;
              tick();
              client.rateInterval = setInterval(tick, 1000);
            }, Math.floor((index * 1000) / opts.connections));
          });
        },
      },
      (error, result) => {
        cleanStop.dispose();
        if (error) return rejectRun(error);
        const windowS = (lastResponseAt - startedAt) / 1000;
        // Counted from the connections: with a rate, autocannon's requests.sent adds each
        // connection's per-second rate up front for requests it assumes it could not see.
        const sent = clients.reduce((sum, client) => sum + client.reqsMade, 0);
        const unanswered = sent - counters.responses;
        resolveRun({ result, windowS, sent, responses: counters.responses, status202: counters.status202, unanswered, drained: cleanStop.stopping && unanswered === 0 });
      },
    );
    instance.on('response', (_client: Client, statusCode: number) => {
      counters.responses += 1;
      if (statusCode === 202) counters.status202 += 1;
      lastResponseAt = performance.now();
    });

    const cleanStop = stopCleanlyAfter({
      clients,
      seconds: opts.seconds,
      startedAt,
      responses: () => counters.responses,
      ...(opts.progressLabel === undefined ? {} : { progressLabel: opts.progressLabel }),
    });
  });
}
