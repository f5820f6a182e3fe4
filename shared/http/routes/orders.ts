import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Db } from '../../db.ts';
import { ApiError, DbUnavailableError, LockTimeoutError, coerceError, isConnectionError } from '../../errors/index.ts';
import { isIdString } from '../../ids.ts';
import { CreateOrderBody, IDEMPOTENCY_KEY_PATTERN } from '../../orders/create-order-schema.ts';
import type { OrderIntake } from '../../orders/order-intake.ts';
import { applyOrderEvent } from '../../orders/apply-order-event.ts';
import type { ChangeOrder } from '../../orders/order-writer.ts';
import { readOrderForClient } from '../../orders/read-order.ts';
import { ORDER_EVENT_TYPES } from '../../orders/state-machine.ts';
import { enqueueNotifications } from '../../queues/notification-producer.ts';
import { DeadlineExceeded, withDeadline } from '../../with-deadline.ts';

export interface OrderRoutesDeps {
  readonly db: Db;
  readonly intake: OrderIntake;
  readonly dbTimeoutMs: number;
  /** Changes orders through the lock-mark-update-reload routine. */
  readonly changeOrder: ChangeOrder;
  /** Where a cancelled order's customer notification goes. */
  readonly notificationsQueue: Queue;
  readonly redisTimeoutMs: number;
}

const OrderIdParams = Type.Object({ id: Type.String() });
const OrderEventBody = Type.Object(
  { type: Type.Union(ORDER_EVENT_TYPES.map((t) => Type.Literal(t))) },
  { additionalProperties: false },
);

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
  return /Stream isn't writeable|Connection is closed|enableOfflineQueue/i.test(error.message);
}

export async function orderRoutes(scope: FastifyInstance, deps: OrderRoutesDeps): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();

  app.post('/v1/orders', { schema: { body: CreateOrderBody } }, async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw new ApiError('IDEMPOTENCY_KEY_REQUIRED');
    }
    const client = request.client!;
    const accepted = await deps.intake.accept(client.id, key, request.body);
    if (accepted.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(202).send({ id: accepted.id, status: accepted.status });
  });

  app.get('/v1/orders/:id', { schema: { params: OrderIdParams } }, async (request) => {
    const { id } = request.params;
    if (!isIdString(id)) throw new ApiError('ORDER_NOT_FOUND');
    const order = await orUnavailable(readOrderForClient(deps.db, id, request.client!.id), deps.dbTimeoutMs);
    if (!order) throw new ApiError('ORDER_NOT_FOUND');
    return order;
  });

  app.post('/v1/orders/:id/events', { schema: { params: OrderIdParams, body: OrderEventBody } }, async (request) => {
    const { id } = request.params;
    if (!isIdString(id)) throw new ApiError('ORDER_NOT_FOUND');
    const client = request.client!;
    const owned = await orUnavailable(
      deps.db('orders').where({ id, client_id: client.id }).first('id'),
      deps.dbTimeoutMs,
    );
    if (!owned) throw new ApiError('ORDER_NOT_FOUND');
    const order = await orUnavailable(applyOrderEvent(deps.changeOrder, id, request.body.type, `client:${client.id}`), deps.dbTimeoutMs);
    if (order.status === 'CANCELLED') {
      // The cancel is committed; telling the customer must not undo or fail it.
      await enqueueNotifications(deps.notificationsQueue, order.id, ['customer.cancelled'], deps.redisTimeoutMs).catch(
        (error: unknown) => request.log.warn({ err: coerceError(error), orderId: order.id }, 'cancel notification not enqueued'),
      );
    }
    return { id: order.id, status: order.status, version: order.version };
  });
}
