/**
 * The part of autocannon 9's programmatic API the benches use (the package ships no types).
 * See node_modules/autocannon/README.md.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  export interface RequestParams {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string | Buffer;
  }

  export interface Request {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Called before each request of this entry is built; returns the request to send. */
    setupRequest?: (request: RequestParams, context: Record<string, unknown>) => RequestParams | null;
    /** Called with every response to this entry (status, body, context, headers). */
    onResponse?: (status: number, body: string | Buffer, context: Record<string, unknown>, headers: Record<string, string>) => void;
  }

  /**
   * One connection. responseMax and reqsMade are internals the benches use to stop cleanly; rate,
   * reqsMadeThisSecond, paused, rateInterval and _doRequest are the internals of its per-second
   * rate limit (bench/lib/order-load.ts staggers the connections' seconds so the rate is even).
   */
  export interface Client extends EventEmitter {
    responseMax: number | undefined;
    reqsMade: number;
    destroyed: boolean;
    rate?: number;
    reqsMadeThisSecond?: number;
    paused?: boolean;
    rateInterval?: NodeJS.Timeout;
    _doRequest(): void;
  }

  export interface Options {
    url: string;
    connections?: number;
    duration?: number;
    amount?: number;
    timeout?: number;
    pipelining?: number;
    workers?: number;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    requests?: Request[];
    idReplacement?: boolean;
    setupClient?: (client: Client) => void;
    title?: string;
    /** Requests per second over all connections (each connection gets its share). */
    overallRate?: number;
    /** Requests per second per connection. */
    connectionRate?: number;
    /** Record latencies as measured (otherwise a rate-limited run back-fills them at 1 ms intervals). */
    ignoreCoordinatedOmission?: boolean;
  }

  export interface Histogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p2_5: number;
    p50: number;
    p75: number;
    p90: number;
    p97_5: number;
    p99: number;
    p99_9: number;
    p99_99: number;
    p99_999: number;
  }

  export interface Result {
    title?: string;
    url: string;
    duration: number;
    samples: number;
    start: Date;
    finish: Date;
    errors: number;
    timeouts: number;
    mismatches: number;
    non2xx: number;
    resets: number;
    '1xx': number;
    '2xx': number;
    '3xx': number;
    '4xx': number;
    '5xx': number;
    statusCodeStats: Record<string, { count: number }>;
    latency: Histogram & { totalCount: number };
    requests: Histogram & { sent: number };
    throughput: Histogram;
  }

  export interface Instance extends EventEmitter {
    stop(): void;
  }

  function autocannon(opts: Options, cb: (err: Error | null, result: Result) => void): Instance;
  export default autocannon;
}
