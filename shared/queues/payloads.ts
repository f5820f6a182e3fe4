/**
 * The one map of job names to payloads. Producers and workers both type against it, and
 * both validate against it at run time (a queue is a public interface).
 */
/** The notifications Courier sends; each is sent at most once per order. */
export const NOTIFICATION_KINDS = ['customer.dispatched', 'merchant.dispatched', 'customer.cancelled'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** Why a cache warm-up runs: a web process started, a scheduler tick, an operator's command. */
export const WARM_UP_REASONS = ['start', 'cron', 'cli'] as const;
export type WarmUpReason = (typeof WARM_UP_REASONS)[number];

/** Who asked for a compensation or reconciliation run: a scheduler tick or an operator. */
export const MAINTENANCE_REASONS = ['cron', 'cli'] as const;
export type MaintenanceReason = (typeof MAINTENANCE_REASONS)[number];

export interface JobPayloads {
  /** Take a CREATED order through pricing. jobId `order-<id>` makes a repeat a no-op. */
  'order.price': { orderId: string };
  /** Match the priced orders of one zone to free riders, in one batch (dispatch queue). jobId `dispatch-<zone>-<windowStartMs>`. */
  'dispatch.zone': { zoneId: string };
  /** Send one notification (notifications queue). jobId `notify-<orderId>-<kind>`. */
  'notify.send': { orderId: string; kind: NotificationKind };
  /** Preload active orders, merchants and rider positions into Redis (maintenance queue). jobId `<reason>-warmup-<yyyymmddhhmm>`. */
  'cache.warm-up': { reason: WarmUpReason };
  /** Re-drive orders due in PRICING_FAILED / DISPATCH_FAILED, or escalate them (maintenance queue). jobId `<reason>-compensate-<yyyymmddhhmmss>`. */
  'orders.compensate': { reason: MaintenanceReason };
  /** Compare MySQL with the queues and put back what Redis lost (maintenance queue). jobId `<reason>-reconcile-<yyyymmddhhmmss>`. */
  'orders.reconcile': { reason: MaintenanceReason };
}

export type JobName = keyof JobPayloads;

/**
 * BullMQ refuses custom job ids with a single ':' (it reserves them for its own repeat keys),
 * so the architecture's `order:<id>` is spelled `order-<id>`.
 */
export function orderJobId(orderId: string): string {
  return `order-${orderId}`;
}

/**
 * The price job of an order's current stay in CREATED: `order-<id>` the first time, and
 * `order-<id>-retry-<n>` after its n-th re-drive (the failed job of the earlier try is kept for
 * inspection, and a job id only adds while no job of that id exists).
 */
export function priceJobId(orderId: string, attempts: number): string {
  return attempts === 0 ? orderJobId(orderId) : `${orderJobId(orderId)}-retry-${attempts}`;
}

/** One dispatch run per zone per window: every priced order of the window joins the same job. */
export function dispatchJobId(zoneId: string, windowStartMs: number): string {
  return `dispatch-${zoneId}-${windowStartMs}`;
}

export function notificationJobId(orderId: string, kind: NotificationKind): string {
  return `notify-${orderId}-${kind.replace('.', '-')}`;
}

/**
 * One warm-up per reason and minute (UTC): every scheduler firing the same tick, or every web
 * process starting in the same minute, adds the same job id, so it runs once.
 */
export function warmUpJobId(reason: WarmUpReason, at: Date): string {
  return `${reason}-warmup-${at.toISOString().slice(0, 16).replace(/[-T:]/g, '')}`;
}

/** The maintenance runs of the scheduler's ticks: one per job and second (UTC) of the tick, whichever scheduler adds it. */
export function maintenanceJobId(job: 'compensate' | 'reconcile', reason: MaintenanceReason, at: Date): string {
  return `${reason}-${job}-${at.toISOString().slice(0, 19).replace(/[-T:]/g, '')}`;
}
