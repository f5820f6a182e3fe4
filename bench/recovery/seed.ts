/** Orders seeded straight into MySQL in failed or orphaned states (part 1 and its baseline). */
import { performance } from 'node:perf_hooks';
import type { Db } from '../../shared/db.ts';
import { IdGenerator } from '../../shared/ids.ts';
import type { RetryPolicy } from '../../shared/orders/retry-schedule.ts';
import type { FailedStatus } from '../../shared/orders/state-machine.ts';
import { priceBatchJobId } from '../../shared/queues/job-ids.ts';
import type { BenchMerchant } from '../lib/bench-zones.ts';
import { fmt, progress } from '../lib/log.ts';
import { prng } from '../lib/prng.ts';
import { seconds, eachLimited } from './helpers.ts';
import { MIX, ORPHAN_BATCH, SEED_CHUNK } from './settings.ts';

/**
 * orphan: CREATED, naming a price batch that Redis lost (the reconciler puts it back under its id);
 * orphan-unnamed: CREATED from before batches, naming none (the reconciler gives them a batch).
 */
export type SeedKind = 'pricing' | 'pricing-escalate' | 'dispatch' | 'dispatch-escalate' | 'orphan' | 'orphan-unnamed';
export const SEED_KINDS: readonly SeedKind[] = ['pricing', 'pricing-escalate', 'dispatch', 'dispatch-escalate', 'orphan', 'orphan-unnamed'];

export interface SeededOrder {
  readonly id: string;
  readonly kind: SeedKind;
  readonly status: FailedStatus | 'CREATED';
  readonly attempts: number;
  readonly zoneId: string;
  /** The price batch its row names (orphans of a lost batch); null for the others. */
  readonly priceJobId: string | null;
}

export interface Seeded {
  readonly orders: SeededOrder[];
  readonly byKind: Record<SeedKind, number>;
  readonly seconds: number;
  readonly rowsPerSec: number;
}

/**
 * Inserts `count` orders of the mix, SEED_CHUNK rows per INSERT (two in flight). Failed orders are
 * due (next_attempt_at 1-60 s ago); the escalating ones sit at their state's budget; orphans are
 * CREATED, last changed 10 minutes ago, with no job anywhere: most of them in price batches of
 * ORPHAN_BATCH (in the order they were made, as the intake names its batches) whose id their rows
 * carry, the others (MIX.unnamedOrphans) naming no batch, as rows written before batches.
 */
export async function seedOrders(
  db: Db,
  opts: { count: number; clientId: string; merchants: readonly BenchMerchant[]; policy: RetryPolicy; label: string; seed: number },
): Promise<Seeded> {
  const random = prng(opts.seed);
  const ids = new IdGenerator(61);
  const now = Date.now();
  const orders: SeededOrder[] = [];
  const byKind = Object.fromEntries(SEED_KINDS.map((k) => [k, 0])) as Record<SeedKind, number>;
  const rows: Record<string, unknown>[] = [];
  const kinds: SeedKind[] = [];
  /** The rows of the named orphans' batch being filled. */
  let batch: Record<string, unknown>[] = [];
  const nameBatch = () => {
    const jobId = priceBatchJobId(batch.map((row) => String(row.id)), 0);
    for (const row of batch) row.price_job_id = jobId;
    batch = [];
  };
  for (let i = 0; i < opts.count; i++) {
    const merchant = opts.merchants[i % opts.merchants.length]!;
    const r = random();
    let kind: SeedKind;
    let status: SeededOrder['status'];
    let attempts: number;
    if (r < MIX.pricingFailed) {
      status = 'PRICING_FAILED';
      kind = random() < MIX.escalatePricing ? 'pricing-escalate' : 'pricing';
      attempts = kind === 'pricing-escalate' ? opts.policy.budget.PRICING_FAILED : Math.floor(random() * opts.policy.budget.PRICING_FAILED);
    } else if (r < MIX.pricingFailed + MIX.dispatchFailed) {
      status = 'DISPATCH_FAILED';
      kind = random() < MIX.escalateDispatch ? 'dispatch-escalate' : 'dispatch';
      attempts = kind === 'dispatch-escalate' ? opts.policy.budget.DISPATCH_FAILED : Math.floor(random() * opts.policy.budget.DISPATCH_FAILED);
    } else {
      status = 'CREATED';
      kind = random() < MIX.unnamedOrphans ? 'orphan-unnamed' : 'orphan';
      attempts = 0;
    }
    const id = ids.next(i % 64);
    byKind[kind] += 1;
    const failed = status !== 'CREATED';
    const row: Record<string, unknown> = {
      id,
      client_id: opts.clientId,
      idempotency_key: `recovery-${opts.label}-${opts.seed}-${i}`,
      request_hash: 'b'.repeat(64),
      merchant_id: merchant.id,
      zone_id: merchant.zoneId,
      status,
      // CREATED (1) -> [PRICED (2) ->] failed, and two versions per re-drive since.
      version: status === 'CREATED' ? 1 : (status === 'PRICING_FAILED' ? 2 : 3) + 2 * attempts,
      attempts,
      next_attempt_at: failed ? new Date(now - 1000 - Math.floor(random() * 59_000)) : null,
      last_error: status === 'PRICING_FAILED' ? 'bench: pricing failed (seeded)' : status === 'DISPATCH_FAILED' ? 'no free rider in range' : null,
      pickup_lat: merchant.lat,
      pickup_lng: merchant.lng,
      dropoff_lat: +(merchant.lat + 0.01).toFixed(6),
      dropoff_lng: +(merchant.lng + 0.01).toFixed(6),
      dropoff_address: '88 Century Ave',
      dropoff_phone: '+8613800000000',
      items: '[{"sku":"NOODLE-01","name":"Beef noodles","qty":2,"priceCents":1800}]',
      note: null,
      fee_cents: status === 'DISPATCH_FAILED' ? 1250 : null,
      eta_seconds: status === 'DISPATCH_FAILED' ? 1500 : null,
      created_at: new Date(now - 15 * 60_000),
      updated_at: new Date(now - (failed ? 2 : 10) * 60_000),
      price_job_id: null,
    };
    rows.push(row);
    kinds.push(kind);
    if (kind === 'orphan') {
      batch.push(row);
      if (batch.length === ORPHAN_BATCH) nameBatch();
    }
  }
  if (batch.length > 0) nameBatch();
  for (const [i, row] of rows.entries()) {
    const priceJobId = row.price_job_id as string | null;
    orders.push({ id: String(row.id), kind: kinds[i]!, status: row.status as SeededOrder['status'], attempts: Number(row.attempts), zoneId: String(row.zone_id), priceJobId });
  }

  const t0 = performance.now();
  let inserted = 0;
  let lastForced = 0;
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < rows.length; i += SEED_CHUNK) chunks.push(rows.slice(i, i + SEED_CHUNK));
  await eachLimited(chunks, 2, async (chunk) => {
    await db('orders').insert(chunk);
    inserted += chunk.length;
    const elapsed = seconds(t0);
    const force = elapsed - lastForced >= 3 || inserted === rows.length;
    if (force) lastForced = elapsed;
    progress(`  [${opts.label}] ${fmt(inserted)} / ${fmt(rows.length)} orders inserted (${fmt(inserted / Math.max(elapsed, 0.001))} rows/s)`, force);
  });
  const s = seconds(t0);
  return { orders, byKind, seconds: s, rowsPerSec: rows.length / s };
}

/** What the re-drive must leave: the status each seeded order moves to. */
export function expectedStatus(kind: SeedKind): 'CREATED' | 'PRICED' | 'CANCELLED' {
  switch (kind) {
    case 'pricing':
    case 'orphan':
    case 'orphan-unnamed':
      return 'CREATED';
    case 'dispatch':
      return 'PRICED';
    default:
      return 'CANCELLED';
  }
}
