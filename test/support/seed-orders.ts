import { randomBytes } from 'node:crypto';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { newOrderRow } from '../../shared/orders/insert-orders.ts';
import type { OrderStatus } from '../../shared/orders/status.ts';
import { TEST_MERCHANT, orderBody } from './test-web.ts';

const ids = new IdGenerator(63);

export interface SeedOptions {
  readonly clientId: string;
  readonly status: OrderStatus;
  readonly count: number;
  readonly attempts?: number;
  /** When the next attempt is due, relative to now (negative: already due). Default: none (NULL). */
  readonly nextAttemptInMs?: number;
  /** How long ago the row last changed. Default 0 */
  readonly updatedAgoMs?: number;
  readonly merchant?: { id: string; zoneId: string; lat: number; lng: number };
  readonly lastError?: string;
  /** The price batch the rows name (default: none, as rows written before batch jobs). */
  readonly priceJobId?: string;
}

/**
 * Writes orders straight into MySQL in a given state, as if the pipeline had left them there (and
 * with no job anywhere): the situations compensation and the reconciler exist for. Ids are the
 * app's own time-ordered ids. Resolves with the ids, in insert order.
 */
export async function seedOrders(db: Db, opts: SeedOptions): Promise<string[]> {
  const merchant = opts.merchant ?? { id: TEST_MERCHANT.id, zoneId: TEST_MERCHANT.zone_id, lat: TEST_MERCHANT.lat, lng: TEST_MERCHANT.lng };
  const seeded: string[] = [];
  const tag = randomBytes(4).toString('hex');
  for (let start = 0; start < opts.count; start += 1000) {
    const rows = Array.from({ length: Math.min(1000, opts.count - start) }, (_, index) => {
      const id = ids.next(0);
      seeded.push(id);
      return {
        ...newOrderRow({
          id,
          clientId: opts.clientId,
          idempotencyKey: `seed-${tag}-${start + index}`,
          requestHash: '0'.repeat(64),
          merchant,
          body: orderBody() as never,
        }),
        status: opts.status,
        attempts: opts.attempts ?? 0,
        last_error: opts.lastError ?? null,
        price_job_id: opts.priceJobId ?? null,
        next_attempt_at:
          opts.nextAttemptInMs === undefined ? null : db.raw('CURRENT_TIMESTAMP(3) + INTERVAL ? MICROSECOND', [opts.nextAttemptInMs * 1000]),
        updated_at: db.raw('CURRENT_TIMESTAMP(3) - INTERVAL ? MICROSECOND', [(opts.updatedAgoMs ?? 0) * 1000]),
      };
    });
    await db('orders').insert(rows);
  }
  return seeded;
}
