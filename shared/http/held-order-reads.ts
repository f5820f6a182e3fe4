import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Authenticator } from '../clients/authenticator.ts';
import type { LastUsedRecorder } from '../clients/last-used.ts';
import type { OrderReader } from '../cache/order-reader.ts';
import type { AuthenticatedClient } from '../clients/authenticator.ts';
import type { OrderRecord } from '../orders/read-order.ts';
import { trackHeld, type TrackingParts } from '../orders/tracking.ts';
import type { Logger } from '../logger.ts';
import { heldClientOf } from './authenticate.ts';
import type { InFlightGate } from './in-flight.ts';
import { ORDER_CACHE_CONTROL, ORDER_CONTENT_TYPE, matchesEtag, type OrderAnswers } from './order-answers.ts';
import type { ClientRateLimit } from './rate-limit.ts';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.ts';
import type { Timer } from '../metrics/timing-histogram.ts';

const ORDER_READ_PREFIX = '/v1/orders/';
const TRACKING_SUFFIX = '/tracking';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface HeldOrderReadsDeps {
  readonly authenticator: Authenticator;
  readonly lastUsed?: LastUsedRecorder;
  readonly rateLimit: ClientRateLimit;
  readonly gate: InFlightGate;
  readonly reader: OrderReader;
  /** The routes' answers of each order version, and the tracking route's serializer (the same object as the routes'). */
  readonly answers: OrderAnswers;
  /** The tracking view's parts (the same as the tracking route's). */
  readonly tracking: TrackingParts;
  readonly isDraining: () => boolean;
  /** The order read route's request timers (courier_http_request_seconds), by method and status. */
  readonly timerOf: (method: string, status: number) => Timer;
  /** The tracking route's. */
  readonly trackingTimerOf: (method: string, status: number) => Timer;
  readonly logger: Logger;
}

/**
 * The HTTP server's request listener: a `GET /v1/orders/:id` or `GET /v1/orders/:id/tracking` that
 * this process can answer from what it holds, and exactly as its route would, is answered here,
 * before Fastify; every other request goes to Fastify (`fastify`, its own listener) untouched.
 *
 * Why: the most frequent request at a peak is a customer's app polling its order. Answered by the
 * route, it paid Fastify's request and reply objects, routing and hook runners, and header
 * handling: about half of a hello-world's rate under wrk (bench/RESULTS.md, issue 14). Here it
 * skips all of that: a few lookups in memory, and one write. Counted by callgrind, what is left is
 * mostly Node's: each of the contract's six headers costs about 1,000 instructions in writeHead
 * (two regex checks, a lower-casing, four string joins), and all six five times what the two cache
 * lookups cost (bench/RESULTS.md, issue 14).
 *
 * Answered here only when each step the route takes is decided in memory, and then with the same
 * headers and body: the instance not draining and under HTTP_MAX_IN_FLIGHT (the answer is sent in
 * this tick, so it never holds a place); a Bearer key the authenticator holds as good (a revoked one
 * stops within AUTH_CACHE_TTL_SECONDS, as on the route); this process's copy of the order
 * (L1, so invalidations and L1_TTL_MS bound it as on the route), the client's own; for the order,
 * the version's body already made by the route once (or a matching If-None-Match: 304); for its
 * tracking view, the parts held (trackHeld, as on the route) and the route's serializer noted; a
 * token of the client's rate this process already leased. Anything else (no key, a key to look up,
 * someone else's order, a miss, a part to fetch, a query string, HEAD, a lease to ask Redis for)
 * counts and spends nothing: the route answers it, with all its errors. Only the exact spelling
 * `Bearer <key>` is read here; the first tracking view after a start goes to the route, which notes
 * its serializer then.
 */
export function answeringHeldReads(deps: HeldOrderReadsDeps, fastify: RequestListener): RequestListener {
  const ok = deps.timerOf('GET', 200);
  const notModified = deps.timerOf('GET', 304);
  const tracked = deps.trackingTimerOf('GET', 200);

  // The rate is the last check, and the only one that spends: from there on the answer is this
  // one, and nothing but the writing of it comes before it is out (its header values are ours, made
  // above, so writeHead has nothing to refuse). Then it is counted as the route counts it.
  const send = (res: ServerResponse, client: AuthenticatedClient, startedAt: number, headers: string[], answer: Answer): boolean => {
    if (!deps.rateLimit.spendHeld(client, startedAt, headers)) return false;
    for (let i = 0; i < answer.headers.length; i++) headers.push(answer.headers[i]!);
    res.writeHead(answer.status, headers).end(answer.body);
    deps.reader.countHeldRead();
    deps.lastUsed?.touch(client.id);
    answer.timer.observe((performance.now() - startedAt) / 1000);
    return true;
  };

  const orderAnswer = (req: IncomingMessage, record: OrderRecord): Answer | undefined => {
    const version = deps.answers.of(record);
    const cache = ['etag', version.etag, 'cache-control', ORDER_CACHE_CONTROL];
    if (matchesEtag(req.headers['if-none-match'], version.etag)) return { status: 304, headers: cache, body: undefined, timer: notModified };
    if (version.body === undefined) return undefined;
    cache.push('content-type', ORDER_CONTENT_TYPE, 'content-length', String(version.bodyBytes));
    return { status: 200, headers: cache, body: version.body, timer: ok };
  };

  const trackingAnswer = (record: OrderRecord): Answer | undefined => {
    const serialize = deps.answers.trackingSerializer;
    const view = serialize && trackHeld(record.order, deps.tracking);
    if (!view) return undefined;
    const body = serialize(view);
    return { status: 200, headers: ['content-type', ORDER_CONTENT_TYPE, 'content-length', String(Buffer.byteLength(body))], body, timer: tracked };
  };

  const answer = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(ORDER_READ_PREFIX)) return false;
    const startedAt = performance.now();
    if (deps.isDraining() || deps.gate.full) return false;
    const client = heldClientOf(req.headers.authorization, deps.authenticator);
    if (!client) return false;
    const tracking = url.endsWith(TRACKING_SUFFIX);
    // Not counted yet: the route counts its own peek when this hands the read on. The id is not
    // checked first: L1 holds only ids read from MySQL, so any other text is a miss, and the route checks it.
    const record = deps.reader.peek(url.slice(ORDER_READ_PREFIX.length, tracking ? -TRACKING_SUFFIX.length : undefined), false);
    if (!record || record.clientId !== client.id) return false;
    const made = tracking ? trackingAnswer(record) : orderAnswer(req, record);
    // In the order the routes' hooks set them: the request's id, the rate's three, then the answer's own.
    return made !== undefined && send(res, client, startedAt, [REQUEST_ID_HEADER, requestIdOf(req)], made);
  };

  return (req, res) => {
    let answered = false;
    try {
      answered = answer(req, res);
    } catch (error) {
      // A fault of this shortcut must not cost the request: unless its answer is already out, the route answers it.
      deps.logger.error({ err: error, url: req.url }, 'order read before Fastify failed; handed to the route');
      answered = res.headersSent;
    }
    if (!answered) fastify(req, res);
  };
}

/** An answer made in memory, before its rate token is spent: the headers after the rate's, and the timer it counts in. */
interface Answer {
  readonly status: 200 | 304;
  readonly headers: string[];
  readonly body: string | undefined;
  readonly timer: Timer;
}
