/** The notifications Courier sends; each is sent at most once per order (one ledger row per order and kind). */
export const NOTIFICATION_KINDS = ['customer.dispatched', 'merchant.dispatched', 'customer.cancelled'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** One notification: what an order is owed. */
export interface OwedNotification {
  readonly orderId: string;
  readonly kind: NotificationKind;
}
