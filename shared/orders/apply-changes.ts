import type { Knex } from 'knex';
import { caseById } from '../db.ts';
import { compareIds } from '../ids.ts';
import type { OwedNotification } from '../notifications/kinds.ts';
import { freesRider } from './state-machine.ts';
import type { OrderStatus } from './status.ts';

/** Columns a change may set besides status and version. */
export interface OrderPatch {
  readonly fee_cents?: number | null;
  readonly eta_seconds?: number | null;
  readonly rider_id?: string | null;
  readonly attempts?: number;
  readonly next_attempt_at?: Date | null;
  readonly last_error?: string | null;
  readonly price_job_id?: string | null;
}

/** An order as the write routine read it, under its row lock. */
export interface LockedOrder {
  readonly id: string;
  readonly clientId: string;
  readonly status: OrderStatus;
  readonly version: number;
  readonly zoneId: string;
  readonly riderId: string | null;
  /** Compensation re-drives since the order last moved forward. */
  readonly attempts: number;
  readonly lastError: string | null;
  /** When compensation may re-drive it next (failure states only). */
  readonly nextAttemptAt: Date | null;
}

/** What a writer decided for one order. */
export interface PlannedChange {
  readonly orderId: string;
  readonly to: OrderStatus;
  readonly patch?: OrderPatch;
  /** Recorded in the order's event. */
  readonly reason?: string;
}

/** A change as committed. */
export interface AppliedChange {
  readonly orderId: string;
  readonly from: OrderStatus;
  readonly to: OrderStatus;
  /** The row's version after the change. */
  readonly version: number;
  readonly zoneId: string;
  /** The rider before the change (a delivered or cancelled order gives its slot back). */
  readonly previousRiderId: string | null;
  readonly patch: OrderPatch;
}

const LOCKED_COLUMNS = ['id', 'client_id', 'status', 'version', 'zone_id', 'rider_id', 'attempts', 'last_error', 'next_attempt_at'] as const;

/** Reads and row-locks the orders (FOR UPDATE, in key order, as every writer takes them). */
export async function lockOrderRows(trx: Knex.Transaction, orderIds: readonly string[]): Promise<Map<string, LockedOrder>> {
  if (orderIds.length === 0) return new Map();
  const rows = await trx('orders').select(LOCKED_COLUMNS).whereIn('id', orderIds).orderBy('id').forUpdate();
  return new Map(
    rows.map((row) => [
      String(row.id),
      {
        id: String(row.id),
        clientId: String(row.client_id),
        status: row.status as OrderStatus,
        version: Number(row.version),
        zoneId: String(row.zone_id),
        riderId: row.rider_id === null ? null : String(row.rider_id),
        attempts: Number(row.attempts),
        lastError: row.last_error === null ? null : String(row.last_error),
        nextAttemptAt: row.next_attempt_at === null ? null : new Date(row.next_attempt_at as string),
      },
    ]),
  );
}

/**
 * Applies the changes to rows locked by lockOrderRows, in the caller's transaction: one UPDATE for
 * all of them (per-row values by `CASE id`), one INSERT of their order_events rows (with the job
 * that made them), the notifications they owe as PENDING ledger rows (the outbox), and the rider
 * slots they give back.
 */
export async function applyChanges(
  trx: Knex.Transaction,
  changes: readonly { readonly change: PlannedChange; readonly locked: LockedOrder }[],
  opts: { readonly actor: string; readonly jobId: string | null; readonly owed: readonly OwedNotification[]; readonly notifyJobId: string | null },
): Promise<AppliedChange[]> {
  if (changes.length === 0) return [];
  const ids = changes.map(({ locked }) => locked.id);
  const set: Record<string, unknown> = {
    status: caseById(
      trx,
      changes.map(({ change, locked }) => [locked.id, change.to] as const),
    ),
    version: trx.raw('version + 1'),
    updated_at: trx.raw('CURRENT_TIMESTAMP(3)'),
  };
  const columns = new Set(changes.flatMap(({ change }) => Object.keys(change.patch ?? {}))) as Set<keyof OrderPatch>;
  for (const column of columns) {
    const values = changes.flatMap(({ change, locked }) =>
      change.patch && column in change.patch ? [[locked.id, change.patch[column] ?? null] as const] : [],
    );
    set[column] = caseById(trx, values, values.length < changes.length ? { elseColumn: column } : {});
  }
  await trx('orders').whereIn('id', ids).update(set);

  const actor = opts.actor.slice(0, 64);
  await trx('order_events').insert(
    changes.map(({ change, locked }) => ({
      order_id: locked.id,
      from_status: locked.status,
      to_status: change.to,
      version: locked.version + 1,
      reason: change.reason?.slice(0, 500) ?? null,
      actor,
      job_id: opts.jobId,
    })),
  );

  if (opts.owed.length > 0) {
    // In key order, as the notifier's own inserts take them.
    const sorted = [...opts.owed].sort((a, b) => compareIds(a.orderId, b.orderId) || a.kind.localeCompare(b.kind));
    await trx.raw(
      `INSERT INTO notifications (order_id, kind, status, attempts, job_id) VALUES ${sorted.map(() => "(?, ?, 'PENDING', 0, ?)").join(', ')} ` +
        'ON DUPLICATE KEY UPDATE id = id',
      sorted.flatMap(({ orderId, kind }) => [orderId, kind, opts.notifyJobId]),
    );
  }

  const freed = new Map<string, number>();
  for (const { change, locked } of changes) {
    if (freesRider(change.to) && locked.riderId !== null) freed.set(locked.riderId, (freed.get(locked.riderId) ?? 0) + 1);
  }
  if (freed.size > 0) {
    const slots = caseById(trx, [...freed]);
    await trx('riders')
      .whereIn('id', [...freed.keys()])
      .update({ active_orders: trx.raw('active_orders - LEAST(active_orders, ?)', [slots]) });
  }

  return changes.map(({ change, locked }) => ({
    orderId: locked.id,
    from: locked.status,
    to: change.to,
    version: locked.version + 1,
    zoneId: locked.zoneId,
    previousRiderId: locked.riderId,
    patch: change.patch ?? {},
  }));
}
