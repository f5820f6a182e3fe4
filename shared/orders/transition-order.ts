import type { Knex } from 'knex';
import { transactionRetryingDeadlocks, type Db } from '../db.ts';
import { canTransition } from './state-machine.ts';
import type { OrderStatus } from './status.ts';

/** Columns a transition may set besides status and version. */
export interface OrderPatch {
  fee_cents?: number | null;
  eta_seconds?: number | null;
  rider_id?: string | null;
  attempts?: number;
  next_attempt_at?: Date | null;
  last_error?: string | null;
}

export interface TransitionRequest {
  readonly orderId: string;
  readonly to: OrderStatus;
  /** Who asked: 'worker:price', 'rider', 'client', 'scheduler'... recorded in order_events. */
  readonly actor: string;
  readonly reason?: string;
  /** Columns to set as well; a function gets the order as the UPDATE will find it (e.g. to back off by its attempts). */
  readonly patch?: OrderPatch | ((current: CurrentOrder) => OrderPatch);
  /** Only from these states (e.g. a step that must not run twice); default: any legal source. */
  readonly from?: readonly OrderStatus[];
  /**
   * The order as the caller just read it: saves the read. If it is stale the guarded UPDATE
   * misses, and the usual re-read decides.
   */
  readonly expected?: CurrentOrder;
  /** Runs in the same transaction after the order row is updated (e.g. take a rider's slot). */
  readonly alsoDo?: (trx: Knex.Transaction, current: CurrentOrder) => Promise<void>;
}

export interface CurrentOrder {
  readonly id: string;
  readonly status: OrderStatus;
  readonly version: number;
  readonly riderId: string | null;
  /** Compensation re-drives since the order last moved forward (orders.attempts). */
  readonly attempts: number;
}

export type TransitionResult =
  | { readonly kind: 'done'; readonly order: CurrentOrder; readonly previous: CurrentOrder }
  | { readonly kind: 'illegal'; readonly current: CurrentOrder }
  | { readonly kind: 'not_found' };

const MAX_RACES = 5;

/**
 * Moves an order to a new status: a guarded UPDATE (`WHERE id AND status AND version`) and its
 * order_events row, in one transaction. A step re-run after a crash, or a duplicate job, finds the
 * order already moved on and gets 'illegal' back: the second run changes nothing. Losing a race
 * to another writer re-reads and decides again.
 */
export async function transitionOrder(db: Db, request: TransitionRequest): Promise<TransitionResult> {
  let known = request.expected;
  for (let race = 0; race < MAX_RACES; race++) {
    const current = known ?? (await readCurrent(db, request.orderId));
    known = undefined;
    if (!current) return { kind: 'not_found' };
    const allowedFrom = request.from ?? null;
    if (!canTransition(current.status, request.to) || (allowedFrom && !allowedFrom.includes(current.status))) {
      return { kind: 'illegal', current };
    }
    const patch = typeof request.patch === 'function' ? request.patch(current) : (request.patch ?? {});
    const next: CurrentOrder = {
      id: current.id,
      status: request.to,
      version: current.version + 1,
      riderId: patch.rider_id !== undefined ? patch.rider_id : current.riderId,
      attempts: patch.attempts ?? current.attempts,
    };
    const won = await transactionRetryingDeadlocks(db, async (trx) => {
      const updated = await trx('orders')
        .where({ id: current.id, status: current.status, version: current.version })
        .update({ ...patch, status: next.status, version: next.version, updated_at: trx.raw('CURRENT_TIMESTAMP(3)') });
      if (updated !== 1) return false;
      await trx('order_events').insert({
        order_id: current.id,
        from_status: current.status,
        to_status: next.status,
        version: next.version,
        reason: request.reason?.slice(0, 500) ?? null,
        actor: request.actor.slice(0, 64),
      });
      await request.alsoDo?.(trx, current);
      return true;
    });
    if (won) return { kind: 'done', order: next, previous: current };
  }
  throw new Error(`order ${request.orderId}: lost ${MAX_RACES} races in a row to other writers`);
}

async function readCurrent(db: Db, orderId: string): Promise<CurrentOrder | undefined> {
  const row = await db('orders').select('id', 'status', 'version', 'rider_id', 'attempts').where({ id: orderId }).first();
  if (!row) return undefined;
  return {
    id: String(row.id),
    status: row.status as OrderStatus,
    version: Number(row.version),
    riderId: row.rider_id === null ? null : String(row.rider_id),
    attempts: Number(row.attempts),
  };
}
