import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Db } from '../../db.ts';
import { ApiError, DbUnavailableError, LockTimeoutError, coerceError, isConnectionError } from '../../errors/index.ts';
import { isIdString } from '../../ids.ts';
import type { OrderIntake } from '../../orders/order-intake.ts';
import { applyOrderEvent } from '../../orders/apply-order-event.ts';
import type { OrderWriterDeps } from '../../orders/write-orders.ts';
import type { OrderReader } from '../../cache/order-reader.ts';
import type { OrderRecord } from '../../orders/read-order.ts';
import { ORDER_CACHE_CONTROL, ORDER_CONTENT_TYPE, matchesEtag, type OrderAnswers } from '../order-answers.ts';
import type { RecentWriters } from '../recent-writers.ts';
import { trackHeld, trackOrder, type TrackingParts, type TrackingView } from '../../orders/tracking.ts';
import { DeadlineExceeded, withDeadline } from '../../with-deadline.ts';
import { CREATE_ORDER_SCHEMA, GET_ORDER_SCHEMA, ORDER_EVENT_SCHEMA, TRACK_ORDER_SCHEMA } from './order-schemas.ts';

/** The read of one order (its label in courier_http_request_seconds; held-order-reads.ts answers it first when it can). */
export const ORDER_READ_ROUTE = '/v1/orders/:id';
/** The tracking view of one order (held-order-reads.ts answers it first too). */
export const ORDER_TRACKING_ROUTE = '/v1/orders/:id/tracking';

export interface OrderRoutesDeps {
  readonly db: Db;
  readonly intake: OrderIntake;
  readonly dbTimeoutMs: number;
  /** The write routine's parts: events change orders through lock, mark stale, update, reload. */
  readonly writer: OrderWriterDeps;
  /** How long an event waits for an order another writer holds, in ms (then 503 ORDER_BUSY). */
  readonly lockWaitMs: number;
  /** Reads orders L1 -> L2 -> MySQL. */
  readonly reader: OrderReader;
  readonly recentWriters: RecentWriters;
  /** Each order version's ETag and body, made once (shared with the reads answered before Fastify: held-order-reads.ts). */
  readonly answers: OrderAnswers;
  /** Where the tracking view's parts come from, and how long each may take. */
  readonly tracking: TrackingParts;
  readonly trackingPartTimeoutMs: number;
}

/**
 * A dependency's trouble becomes a clear 503: the order's lock not free in time (ORDER_BUSY), Redis
 * away (REDIS_UNAVAILABLE), MySQL away or too slow (DB_UNAVAILABLE). Anything else goes on to the
 * error handler.
 */
async function orUnavailable<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withDeadline(work, timeoutMs);
  } catch (error) {
    const cause = coerceError(error);
    if (cause instanceof LockTimeoutError) throw new ApiError('ORDER_BUSY', undefined, {}, { cause });
    if (isRedisUnavailable(cause)) throw new ApiError('REDIS_UNAVAILABLE', undefined, {}, { cause });
    if (cause instanceof DeadlineExceeded || isConnectionError(cause)) throw new DbUnavailableError(cause);
    throw cause;
  }
}

function isRedisUnavailable(error: Error): boolean {
  return /Stream isn't writeable|Connection is closed|enableOfflineQueue|Command timed out/i.test(error.message);
}

/**
 * The reads' schemas only document their params and headers: no request can fail them (an id is
 * any string, which the route looks up or answers 404, and any X-Request-Id is taken or replaced),
 * and checking them anyway cost a cached read ~2 µs of its ~40 (bench/RESULTS.md, issue 14). A part
 * that could refuse a request must not be added to such a route unchecked, so it fails at start.
 */
const DOCUMENTED_ONLY: FastifySchemaCompiler<unknown> = ({ httpPart, url }) => {
  if (httpPart !== 'params' && httpPart !== 'headers') throw new Error(`${url}: its ${httpPart ?? 'unknown'} schema would not be checked`);
  return () => true;
};

export async function orderRoutes(scope: FastifyInstance, deps: OrderRoutesDeps): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  // The schema checks the Idempotency-Key header (its error is IDEMPOTENCY_KEY_REQUIRED).
  app.post('/v1/orders', { schema: CREATE_ORDER_SCHEMA }, async (request, reply) => {
    const client = request.client!;
    const accepted = await deps.intake.accept(client.id, request.headers['idempotency-key'], request.body, request.id);
    deps.recentWriters.wrote(client.id);
    if (accepted.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(202).send({ id: accepted.id, status: accepted.status });
  });

  /**
   * The client's own order, read L1 -> L2 -> MySQL; anyone else's is as good as absent. The copy
   * this process holds answers at once (no promise, no deadline timer); only a miss waits, within
   * DB_TIMEOUT_MS, on the primary for READ_YOUR_WRITES_MS after the client's own write.
   */
  const ownRecordHeld = (id: string, clientId: string): OrderRecord | undefined => {
    if (!isIdString(id)) throw new ApiError('ORDER_NOT_FOUND');
    const record = deps.reader.peek(id);
    if (record && record.clientId !== clientId) throw new ApiError('ORDER_NOT_FOUND');
    return record;
  };
  const loadOwnRecord = async (id: string, clientId: string): Promise<OrderRecord> => {
    const { record } = await orUnavailable(deps.reader.get(id, { primary: deps.recentWriters.wroteRecently(clientId) }), deps.dbTimeoutMs);
    if (!record || record.clientId !== clientId) throw new ApiError('ORDER_NOT_FOUND');
    return record;
  };

  // An order version's ETag and body are made once (OrderAnswers); a request that already has the
  // version (If-None-Match) gets a 304 with no body at all.
  const { answers } = deps;
  const sendOrder = (request: FastifyRequest, reply: FastifyReply, record: OrderRecord): void => {
    const answer = answers.of(record);
    reply.header('etag', answer.etag).header('cache-control', ORDER_CACHE_CONTROL);
    if (matchesEtag(request.headers['if-none-match'], answer.etag)) {
      reply.code(304).send();
      return;
    }
    // The route's own response schema writes the body, once per version.
    const body = answers.body(record, (order) => reply.serialize(order) as string);
    reply.header('content-type', ORDER_CONTENT_TYPE).send(body);
  };

  // Not async: an order this process holds is answered in the same tick.
  app.get(ORDER_READ_ROUTE, { schema: GET_ORDER_SCHEMA, validatorCompiler: DOCUMENTED_ONLY }, (request, reply) => {
    const clientId = request.client!.id;
    const held = ownRecordHeld(request.params.id, clientId);
    if (held) {
      sendOrder(request, reply, held);
      return undefined;
    }
    return loadOwnRecord(request.params.id, clientId).then((record) => sendOrder(request, reply, record));
  });

  // Not async either: an order and parts this process holds are answered in the same tick.
  app.get(ORDER_TRACKING_ROUTE, { schema: TRACK_ORDER_SCHEMA, validatorCompiler: DOCUMENTED_ONLY }, (request, reply) => {
    // The function Fastify serializes a view with (the response schema's), for held-order-reads.ts.
    answers.trackingSerializer ??= reply.getSerializationFunction('200') as unknown as ((view: TrackingView) => string) | undefined;
    const clientId = request.client!.id;
    const held = ownRecordHeld(request.params.id, clientId);
    const view = held ? trackHeld(held.order, deps.tracking) : undefined;
    if (view) {
      reply.send(view);
      return undefined;
    }
    const record = held ? Promise.resolve(held) : loadOwnRecord(request.params.id, clientId);
    return record.then((found) => trackOrder(found.order, deps.tracking, deps.trackingPartTimeoutMs));
  });

  app.post('/v1/orders/:id/events', { schema: ORDER_EVENT_SCHEMA }, async (request) => {
    const { id } = request.params;
    if (!isIdString(id)) throw new ApiError('ORDER_NOT_FOUND');
    const client = request.client!;
    const change = await orUnavailable(
      applyOrderEvent(deps.writer, { orderId: id, clientId: client.id, type: request.body.type, actor: `client:${client.id}`, waitMs: deps.lockWaitMs }),
      deps.dbTimeoutMs + deps.lockWaitMs,
    );
    deps.recentWriters.wrote(client.id);
    return { id: change.orderId, status: change.to, version: change.version };
  });
}
