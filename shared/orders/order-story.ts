import type { Db } from '../db.ts';
import type { NotificationKind } from '../notifications/kinds.ts';
import { readOrder, type OrderView } from './read-order.ts';

export interface OrderEvent {
  readonly version: number;
  readonly from: string | null;
  readonly to: string;
  readonly actor: string;
  readonly reason: string | null;
  /** The batch job that made the transition (for CREATED: the price batch that carries the order). */
  readonly jobId: string | null;
  readonly at: string;
}

export interface OrderNotification {
  readonly kind: NotificationKind;
  readonly status: string;
  readonly attempts: number;
  readonly jobId: string | null;
  readonly providerMessageId: string | null;
  readonly lastError: string | null;
  readonly sentAt: string | null;
  readonly updatedAt: string;
}

/** One order's own story, all of it from MySQL: its row, its events in order, its notifications, and the batch jobs that carried it. */
export interface OrderStory {
  readonly order: OrderView;
  readonly clientId: string;
  /** The price batch named by the row (the one carrying it while CREATED). */
  readonly priceJobId: string | null;
  /** The X-Request-Id it was created under (null before they were stored): grep the processes' logs for it. */
  readonly requestId: string | null;
  readonly events: readonly OrderEvent[];
  readonly notifications: readonly OrderNotification[];
  /** Every job id its events and notifications name, first seen first. */
  readonly jobIds: readonly string[];
}

const iso = (value: unknown) => new Date(value as string).toISOString();

/** With no job per order, an order's story is read from its rows: three queries on its primary key and indexes. */
export async function readOrderStory(db: Db, orderId: string): Promise<OrderStory | undefined> {
  const [record, row, events, notifications] = await Promise.all([
    readOrder(db, orderId),
    db('orders').select('price_job_id', 'request_id').where({ id: orderId }).first(),
    db('order_events').select('version', 'from_status', 'to_status', 'actor', 'reason', 'job_id', 'created_at').where({ order_id: orderId }).orderBy('version'),
    db('notifications')
      .select('kind', 'status', 'attempts', 'job_id', 'provider_message_id', 'last_error', 'sent_at', 'updated_at')
      .where({ order_id: orderId })
      .orderBy('id'),
  ]);
  if (!record) return undefined;
  const story = {
    order: record.order,
    clientId: record.clientId,
    priceJobId: row?.price_job_id ?? null,
    requestId: row?.request_id ?? null,
    events: events.map((event) => ({
      version: Number(event.version),
      from: event.from_status ?? null,
      to: String(event.to_status),
      actor: String(event.actor),
      reason: event.reason ?? null,
      jobId: event.job_id ?? null,
      at: iso(event.created_at),
    })),
    notifications: notifications.map((notification) => ({
      kind: notification.kind as NotificationKind,
      status: String(notification.status),
      attempts: Number(notification.attempts),
      jobId: notification.job_id ?? null,
      providerMessageId: notification.provider_message_id ?? null,
      lastError: notification.last_error ?? null,
      sentAt: notification.sent_at === null ? null : iso(notification.sent_at),
      updatedAt: iso(notification.updated_at),
    })),
  };
  const jobIds = [...new Set([...story.events.map((event) => event.jobId), story.priceJobId, ...story.notifications.map((n) => n.jobId)])].filter(
    (jobId): jobId is string => jobId !== null,
  );
  return { ...story, jobIds };
}
