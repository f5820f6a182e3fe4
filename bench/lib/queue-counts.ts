import type { Queue } from 'bullmq';

/** A queue's job counts by state, as the benches sample and report them. */
export interface QueueCounts {
  wait: number;
  active: number;
  delayed: number;
  prioritized: number;
  failed: number;
  completed: number;
}

export async function queueCounts(queue: Queue): Promise<QueueCounts> {
  const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'failed', 'completed');
  return {
    wait: c.wait ?? 0,
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    prioritized: c.prioritized ?? 0,
    failed: c.failed ?? 0,
    completed: c.completed ?? 0,
  };
}

/** Jobs still to run: waiting, active, delayed or prioritized. */
export const backlogOf = (q: QueueCounts): number => q.wait + q.active + q.delayed + q.prioritized;
