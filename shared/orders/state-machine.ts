import type { NotificationKind } from '../notifications/kinds.ts';
import type { OrderStatus } from './status.ts';

/**
 * The one place that knows which order transitions are legal. Everything that changes an
 * order's status asks here first; the guarded UPDATE then makes the change happen at most once.
 *
 *   CREATED -> PRICED -> DISPATCHED -> PICKED_UP -> DELIVERED
 *     ^  |      ^  |
 *     |  v      |  v
 *   PRICING_FAILED  DISPATCH_FAILED     (compensation re-drives them back, or escalates to CANCELLED)
 *   any state before PICKED_UP -> CANCELLED
 */
const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  CREATED: ['PRICED', 'PRICING_FAILED', 'CANCELLED'],
  PRICING_FAILED: ['CREATED', 'PRICED', 'PRICING_FAILED', 'CANCELLED'],
  PRICED: ['DISPATCHED', 'DISPATCH_FAILED', 'CANCELLED'],
  DISPATCH_FAILED: ['PRICED', 'DISPATCHED', 'DISPATCH_FAILED', 'CANCELLED'],
  DISPATCHED: ['PICKED_UP', 'CANCELLED'],
  PICKED_UP: ['DELIVERED'],
  DELIVERED: [],
  CANCELLED: [],
};

/** The failure states compensation re-drives, and the state each one goes back to for another try. */
export const RETRY_STATE = {
  PRICING_FAILED: 'CREATED',
  DISPATCH_FAILED: 'PRICED',
} as const satisfies Partial<Record<OrderStatus, OrderStatus>>;
export type FailedStatus = keyof typeof RETRY_STATE;
export const FAILED_STATUSES = Object.keys(RETRY_STATE) as FailedStatus[];

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(status: OrderStatus): boolean {
  return TRANSITIONS[status].length === 0;
}

/** The events riders and customers send to POST /v1/orders/:id/events, and where each leads. */
export const ORDER_EVENT_TYPES = ['picked_up', 'delivered', 'cancel'] as const;
export type OrderEventType = (typeof ORDER_EVENT_TYPES)[number];

export const EVENT_TARGET: Readonly<Record<OrderEventType, OrderStatus>> = {
  picked_up: 'PICKED_UP',
  delivered: 'DELIVERED',
  cancel: 'CANCELLED',
};

/**
 * What a transition owes besides the row: the notifications an order entering `to` is owed (their
 * ledger rows are written in the change's own transaction, and go out as one job per change), and
 * whether it gives its rider's slot back. Every writer asks here, so a change owes the same
 * whichever path made it (a rider's event, a dispatch batch, an escalation).
 */
const OWED_NOTIFICATIONS: Readonly<Partial<Record<OrderStatus, readonly NotificationKind[]>>> = {
  DISPATCHED: ['customer.dispatched', 'merchant.dispatched'],
  CANCELLED: ['customer.cancelled'],
};

export function notificationsOwed(to: OrderStatus): readonly NotificationKind[] {
  return OWED_NOTIFICATIONS[to] ?? [];
}

/** A delivered or cancelled order no longer takes a slot of its rider. */
export function freesRider(to: OrderStatus): boolean {
  return to === 'DELIVERED' || to === 'CANCELLED';
}
