/** Every state an order can be in. The transitions between them live in the state machine. */
export const ORDER_STATUSES = [
  'CREATED',
  'PRICED',
  'DISPATCHED',
  'PICKED_UP',
  'DELIVERED',
  'PRICING_FAILED',
  'DISPATCH_FAILED',
  'CANCELLED',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];
