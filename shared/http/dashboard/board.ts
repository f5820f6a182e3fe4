import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { maskPersonalData, maskText } from '../../privacy/mask-personal-data.ts';

/** What one job carried, in a few words, from its name and data (the table of job types says); undefined: not known. */
export type DescribeJob = (name: string, data: unknown) => string | undefined;

/** What each queue carries (the dashboard's queue descriptions). */
const QUEUE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  orders: 'price batches: the orders one web process committed within PRICE_BATCH_WAIT_MS, CREATED -> PRICED',
  dispatch: "dispatch runs: a zone's PRICED orders matched to free riders, window by window",
  notifications: 'notification batches: what one change of orders owes customers and merchants',
  maintenance: 'cache warm-up, compensation and reconciliation runs of the scheduler and operators',
};

/**
 * Fields of a job, wherever bull-board puts one in a response (the queue list, one job, a flow),
 * that may quote personal data. Job data has bull-board's formatter as its documented hook, but
 * failure reasons, stack traces and logs have none: the `after` hook masks them all in one place.
 */
const JOB_CONTENT = new Set(['data', 'returnValue', 'failedReason', 'stacktrace', 'progress', 'ignoredChildFailureReasons']);

function maskJobContent(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((item) => maskJobContent(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = JOB_CONTENT.has(key) ? maskPersonalData(item) : maskJobContent(item, depth + 1);
  return copy;
}

/** A job's title on the board: its name and what it carried ("orders.price: 75 orders from 3826..., attempt 0"), masked. */
function jobTitle(describe: DescribeJob | undefined) {
  return (job: { name?: string; data?: unknown }): string => {
    const name = job.name ?? '';
    let description: string | undefined;
    try {
      description = describe?.(name, job.data);
    } catch {
      description = undefined; // a title is not worth a failed page
    }
    return maskText(description ? `${name}: ${description}` : name);
  };
}

/**
 * bull-board over our queues, masked: job titles say what each batch carried, and personal data
 * is masked in everything it shows of a job. Returns the Fastify plugin that serves it.
 */
export function createBoard(queues: readonly Queue[], opts: { basePath: string; describeJob?: DescribeJob | undefined }): FastifyAdapter {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(opts.basePath);
  const title = jobTitle(opts.describeJob);
  const adapters = queues.map((queue) => {
    // Completed jobs ran; retrying one re-runs a finished batch (a no-op at best): failed ones only.
    const options = { allowCompletedRetries: false, description: QUEUE_DESCRIPTIONS[queue.name] ?? '' };
    const adapter = new BullMQAdapter(queue, options);
    adapter.setFormatter('name', title);
    return adapter;
  });
  createBullBoard({
    queues: adapters,
    serverAdapter,
    options: {
      uiConfig: { boardTitle: 'Courier queues', hideDocsLink: true },
      handlerHooks: {
        after: (context, result) => {
          // A job's logs are a list of lines, all of them content.
          const body = context.route.endsWith('/logs') ? maskPersonalData(result.body) : maskJobContent(result.body);
          return { ...result, body: body as typeof result.body };
        },
      },
    },
  });
  return serverAdapter;
}
