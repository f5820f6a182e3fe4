import { LockTimeoutError } from '../errors/index.ts';
import type { AppliedChange, LockedOrder, OrderPatch } from './apply-changes.ts';
import { canTransition } from './state-machine.ts';
import type { OrderStatus } from './status.ts';
import { writeOrders, type OrderWriterDeps, type WriteOutcome } from './write-orders.ts';

export interface TransitionRequest {
  readonly orderId: string;
  readonly to: OrderStatus;
  readonly reason?: string;
  /** Columns to set as well; a function gets the order as it is under its lock (e.g. to back off by its attempts). */
  readonly patch?: OrderPatch | ((current: LockedOrder) => OrderPatch);
  /** Only from these states (a step that must not run twice); default: any legal source. */
  readonly from?: readonly OrderStatus[];
  /** Only if the order is still at this version (the one the caller decided on). */
  readonly expectedVersion?: number;
  /** Only if the order belongs to this API client; another client's order is as good as absent. */
  readonly clientId?: string;
}

export type TransitionResult =
  | { readonly kind: 'done'; readonly change: AppliedChange }
  | { readonly kind: 'illegal'; readonly current: LockedOrder }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'busy' };

export interface TransitionOptions {
  readonly actor: string;
  readonly jobId?: string;
  /** How long to wait for an order another writer holds, in ms (0: report it busy at once). */
  readonly waitMs: number;
}

/**
 * Moves orders to new states where the state machine (and the request's guards) allow it, through
 * the one write routine: an order found in another state is left as it is and answered 'illegal',
 * so a step re-run after a crash, or a duplicate job, changes nothing.
 */
export async function transitionOrders(
  writer: OrderWriterDeps,
  requests: readonly TransitionRequest[],
  opts: TransitionOptions,
): Promise<{ readonly results: ReadonlyMap<string, TransitionResult>; readonly outcome: WriteOutcome }> {
  const byId = new Map(requests.map((request) => [request.orderId, request]));
  const outcome = await writeOrders(writer, {
    orderIds: [...byId.keys()],
    actor: opts.actor,
    ...(opts.jobId ? { jobId: opts.jobId } : {}),
    waitMs: opts.waitMs,
    plan: (orders) =>
      [...orders.values()].flatMap((current) => {
        const request = byId.get(current.id)!;
        if (!allows(request, current)) return [];
        const patch = typeof request.patch === 'function' ? request.patch(current) : request.patch;
        return [{ orderId: current.id, to: request.to, ...(patch ? { patch } : {}), ...(request.reason ? { reason: request.reason } : {}) }];
      }),
  });
  const applied = new Map(outcome.applied.map((change) => [change.orderId, change]));
  const results = new Map<string, TransitionResult>();
  for (const request of byId.values()) {
    const id = request.orderId;
    const current = outcome.locked.get(id);
    const change = applied.get(id);
    if (change) results.set(id, { kind: 'done', change });
    else if (outcome.busy.includes(id)) results.set(id, { kind: 'busy' });
    else if (!current || (request.clientId !== undefined && current.clientId !== request.clientId)) results.set(id, { kind: 'not_found' });
    else results.set(id, { kind: 'illegal', current });
  }
  return { results, outcome };
}

/** One order, waiting for its lock: a writer that cannot have it in time gets a LockTimeoutError, and never writes without it. */
export async function transitionOrder(writer: OrderWriterDeps, request: TransitionRequest, opts: TransitionOptions): Promise<TransitionResult> {
  const { results } = await transitionOrders(writer, [request], opts);
  const result = results.get(request.orderId)!;
  if (result.kind === 'busy') throw new LockTimeoutError(`order ${request.orderId}`, opts.waitMs);
  return result;
}

function allows(request: TransitionRequest, current: LockedOrder): boolean {
  if (request.clientId !== undefined && current.clientId !== request.clientId) return false;
  if (request.expectedVersion !== undefined && current.version !== request.expectedVersion) return false;
  if (request.from && !request.from.includes(current.status)) return false;
  return canTransition(current.status, request.to);
}
