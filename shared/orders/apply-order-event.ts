import { ApiError } from '../errors/index.ts';
import type { AppliedChange } from './apply-changes.ts';
import { EVENT_TARGET, type OrderEventType } from './state-machine.ts';
import { transitionOrder } from './transition-orders.ts';
import type { OrderWriterDeps } from './write-orders.ts';

/**
 * A rider or customer event (picked_up, delivered, cancel) moves the client's order through the
 * state machine, through the write routine (waiting up to `waitMs` for the order's lock: past it,
 * a LockTimeoutError, answered 503 ORDER_BUSY); an illegal one is a 409 and writes nothing. What
 * the transition owes (a cancel's customer notification, a rider's slot back) the routine does in
 * the same transaction.
 */
export async function applyOrderEvent(
  writer: OrderWriterDeps,
  request: { readonly orderId: string; readonly clientId: string; readonly type: OrderEventType; readonly actor: string; readonly waitMs: number },
): Promise<AppliedChange> {
  const result = await transitionOrder(
    writer,
    { orderId: request.orderId, clientId: request.clientId, to: EVENT_TARGET[request.type], reason: `event ${request.type}` },
    { actor: request.actor, waitMs: request.waitMs },
  );
  if (result.kind === 'not_found') throw new ApiError('ORDER_NOT_FOUND');
  if (result.kind === 'illegal') {
    throw new ApiError('ILLEGAL_TRANSITION', `An order in ${result.current.status} cannot take the event ${request.type}`, {
      status: result.current.status,
      version: result.current.version,
    });
  }
  if (result.kind === 'busy') throw new Error('unreachable: transitionOrder throws for a busy order');
  return result.change;
}
