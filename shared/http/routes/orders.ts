import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Db } from '../../db.ts';
import { ApiError, DbUnavailableError, coerceError, isConnectionError } from '../../errors/index.ts';
import { isIdString } from '../../ids.ts';
import { CreateOrderBody, IDEMPOTENCY_KEY_PATTERN } from '../../orders/create-order-schema.ts';
import type { OrderIntake } from '../../orders/order-intake.ts';
import { readOrderForClient } from '../../orders/read-order.ts';
import { DeadlineExceeded, withDeadline } from '../../with-deadline.ts';

export interface OrderRoutesDeps {
  readonly db: Db;
  readonly intake: OrderIntake;
  readonly dbTimeoutMs: number;
}

const OrderIdParams = Type.Object({ id: Type.String() });

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
    let order;
    try {
      order = await withDeadline(readOrderForClient(deps.db, id, request.client!.id), deps.dbTimeoutMs);
    } catch (error) {
      const cause = coerceError(error);
      if (cause instanceof DeadlineExceeded || isConnectionError(cause)) throw new DbUnavailableError(cause);
      throw cause;
    }
    if (!order) throw new ApiError('ORDER_NOT_FOUND');
    return order;
  });
}
