/** Part 1's samples: for one order of each seeded kind, where it is now and the job its rows name. */
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobPayloads } from '../../jobs/payloads.ts';
import type { Db } from '../../shared/db.ts';
import { liveJobIds, type BenchQueues } from './helpers.ts';
import type { Seeded, SeedKind } from './seed.ts';

const SAMPLED: readonly SeedKind[] = ['pricing', 'dispatch', 'orphan', 'orphan-unnamed', 'pricing-escalate'];

/** A batch job, summed up: its payload's size rather than every id it carries. */
function describe(job: Job | undefined, state: string | null, orderId: string) {
  if (!job) return null;
  const data = job.data as Partial<JobPayloads['orders.price'] & JobPayloads['notify.batch'] & JobPayloads['dispatch.zone']>;
  const carried = data.orderIds ?? data.notifications?.map((n) => n.orderId);
  return {
    name: job.name,
    state,
    ...(carried ? { items: carried.length, carriesIt: carried.includes(orderId) } : {}),
    ...(data.attempt !== undefined ? { attempt: data.attempt } : {}),
    ...(data.zoneId !== undefined ? { zoneId: data.zoneId, window: data.window } : {}),
  };
}

/**
 * A CREATED order: the price batch its row names (orders.price_job_id); a CANCELLED one: the batch
 * its customer.cancelled ledger row names (notifications.job_id); a PRICED one: a dispatch run of
 * its zone waiting on the dispatch queue.
 */
export async function jobSamples(db: Db, redis: Redis, queues: BenchQueues, seeded: Seeded): Promise<Record<string, unknown>[]> {
  const samples: Record<string, unknown>[] = [];
  const dispatchLive = await liveJobIds(redis, queues.dispatch);
  for (const kind of SAMPLED) {
    const order = seeded.orders.find((o) => o.kind === kind);
    if (!order) continue;
    const row = (await db('orders').select('status', 'attempts', 'zone_id', 'price_job_id').where({ id: order.id }).first()) as {
      status: string;
      attempts: number;
      zone_id: string;
      price_job_id: string | null;
    };
    let jobId: string | null;
    let job: Job | undefined;
    if (row.status === 'CREATED') {
      jobId = row.price_job_id;
      job = jobId === null ? undefined : await Job.fromId(queues.orders, jobId);
    } else if (row.status === 'CANCELLED') {
      const ledger = (await db('notifications').select('job_id').where({ order_id: order.id, kind: 'customer.cancelled' }).first()) as { job_id: string | null } | undefined;
      jobId = ledger?.job_id ?? null;
      job = jobId === null ? undefined : await Job.fromId(queues.notifications, jobId);
    } else {
      jobId = [...dispatchLive].find((id) => id.startsWith(`dispatch-${row.zone_id}-`)) ?? null;
      job = jobId === null ? undefined : await Job.fromId(queues.dispatch, jobId);
    }
    samples.push({
      kind,
      orderId: order.id,
      was: `${order.status} attempts ${order.attempts}${order.priceJobId ? `, batch ${order.priceJobId}` : ''}`,
      now: `${row.status} attempts ${row.attempts}`,
      jobId,
      job: describe(job, job ? await job.getState() : null, order.id),
    });
  }
  return samples;
}
