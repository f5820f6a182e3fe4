import { ApiError } from '../errors/index.ts';
import { openLedgerEntriesIn } from '../notifications/notification-ledger.ts';
import type { ChangeOrder } from './order-writer.ts';
import { EVENT_TARGET, type OrderEventType } from './state-machine.ts';
import type { CurrentOrder } from './transition-order.ts';

/**
 * A rider or customer event (picked_up, delivered, cancel) moves the order through the state
 * machine; an illegal one is a 409 and writes nothing. Delivering or cancelling an order that
 * holds a rider gives the rider's slot back in the same transaction; a cancel records the
 * customer's notification (PENDING) in it too.
 */
export async function applyOrderEvent(change: ChangeOrder, orderId: string, type: OrderEventType, actor: string): Promise<CurrentOrder> {
  const to = EVENT_TARGET[type];
  const result = await change({
    orderId,
    to,
    actor,
    reason: `event ${type}`,
    alsoDo: async (trx, current) => {
      if ((to === 'DELIVERED' || to === 'CANCELLED') && current.riderId !== null) {
        await trx('riders').where({ id: current.riderId }).where('active_orders', '>', 0).decrement('active_orders', 1);
      }
      // The customer is owed a message; its ledger row is the outbox the reconciler reads.
      if (to === 'CANCELLED') await openLedgerEntriesIn(trx, [{ orderId, kind: 'customer.cancelled' }]);
    },
  });
  if (result.kind === 'not_found') throw new ApiError('ORDER_NOT_FOUND');
  if (result.kind === 'illegal') {
    throw new ApiError('ILLEGAL_TRANSITION', `An order in ${result.current.status} cannot take the event ${type}`, {
      status: result.current.status,
      version: result.current.version,
    });
  }
  return result.order;
}
