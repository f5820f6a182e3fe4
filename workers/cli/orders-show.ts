import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { isIdString } from '../../shared/ids.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import type { Logger } from '../../shared/logger.ts';
import { readOrderStory, type OrderStory } from '../../shared/orders/order-story.ts';
import type { Redis } from '../../shared/redis.ts';

/** What the command needs of the CLI's session helpers (workers/cli/session.ts). */
export interface ShowDeps {
  readonly cliLogger: (config: Config) => Logger;
  readonly openDb: (config: Config, logger: Logger) => Promise<Db>;
  readonly openRedis: (config: Config) => Promise<Redis>;
}

/** Where each job the story names stands now, or why that is not known. */
type JobStates = { readonly states: ReadonlyMap<string, string> } | { readonly unknown: string };

/**
 * `orders:show <id>`: one order's story, from MySQL (its row, its events with actors, reasons and
 * the batch jobs that made them, its notifications), plus where those jobs stand in Redis when it
 * can be reached. With jobs that carry batches there is no job per order to look at: this is
 * where an operator reads one order.
 */
export function registerOrdersShow(program: Command, deps: ShowDeps): void {
  program
    .command('orders:show')
    .summary("one order's story: its row, events, notifications and the batch jobs that carried it")
    .description(
      'print one order as MySQL holds it (status, version, rider, fee, ETA, attempts, last error, the request id it was created under), its events in order ' +
        '(from -> to, actor, reason, the batch job that made each), its notifications (state, attempts, provider message, ' +
        'last error, batch job), and the state of each of those jobs in Redis (waiting, active, completed, failed, or gone)',
    )
    .argument('<id>', 'the order id (a decimal number)', orderId)
    .option('--json', 'print one JSON document with everything, for scripts')
    .addHelpText('after', '\nExamples:\n  npm run cli -- orders:show 382636929890876416\n  npm run cli -- orders:show 382636929890876416 --json')
    .action(async (id: string, options: { json?: boolean }) => {
      const config = configFromEnv(process.env);
      const logger = deps.cliLogger(config);
      const db = await deps.openDb(config, logger);
      let story: OrderStory | undefined;
      try {
        story = await readOrderStory(db, id);
      } finally {
        await db.destroy();
      }
      if (!story) {
        console.error(`orders:show: no order ${id}`);
        process.exitCode = 1;
        return;
      }
      const jobs = await jobStates(config, deps, story.jobIds);
      if (options.json) {
        console.log(JSON.stringify({ ...story, jobs: 'states' in jobs ? Object.fromEntries(jobs.states) : { unknown: jobs.unknown } }, null, 2));
        return;
      }
      for (const line of render(story, jobs)) console.log(line);
    });
}

function orderId(value: string): string {
  if (!isIdString(value)) throw new InvalidArgumentError(`"${value}" is not an order id (a positive 64-bit decimal number)`);
  return value;
}

/** Each job's state in whichever of Courier's queues holds it; Redis away is said, not fatal: the story is in MySQL. */
async function jobStates(config: Config, deps: ShowDeps, jobIds: readonly string[]): Promise<JobStates> {
  if (jobIds.length === 0) return { states: new Map() };
  let redis: Redis;
  try {
    redis = await deps.openRedis(config);
  } catch (error) {
    return { unknown: error instanceof Error ? error.message : String(error) };
  }
  // Loaded here, not at the top: bullmq (and the table's job modules) only for a story that names jobs.
  const [{ QUEUES }, { JobProducer }] = await Promise.all([import('../../jobs/job-types.ts'), import('../../jobs/producer.ts')]);
  const producer = new JobProducer(redis, { prefix: config.queuePrefix, timeoutMs: config.redisTimeoutMs });
  try {
    const states = new Map<string, string>();
    for (const jobId of jobIds) {
      let state = 'gone (finished and removed, or lost with Redis)';
      for (const queue of QUEUES) {
        const found = await producer.queue(queue).getJobState(jobId);
        if (found !== 'unknown') {
          state = `${found} on ${queue}`;
          break;
        }
      }
      states.set(jobId, state);
    }
    return { states };
  } finally {
    await producer.close();
    redis.disconnect();
  }
}

function render(story: OrderStory, jobs: JobStates): string[] {
  const { order } = story;
  const lines = [
    `order ${order.id}: ${order.status} (version ${order.version}), merchant ${order.merchantId}, zone ${order.zoneId}, client ${story.clientId}`,
    `  rider ${order.riderId ?? '-'}, fee ${order.feeCents ?? '-'} cents, ETA ${order.etaSeconds ?? '-'} s, attempts ${order.attempts}` +
      `${order.lastError ? `, last error: ${order.lastError}` : ''}`,
    `  created ${order.createdAt}, updated ${order.updatedAt}${story.priceJobId ? `, price batch ${story.priceJobId}` : ''}`,
    `  request ${story.requestId ?? '- (created before request ids were stored)'}`,
    '',
    `events (${story.events.length}):`,
    ...story.events.map(
      (event) =>
        `  v${event.version} ${event.at}  ${event.from ?? '(new)'} -> ${event.to}  by ${event.actor}` +
        `${event.reason ? `: ${event.reason}` : ''}${event.jobId ? `  [job ${event.jobId}]` : ''}`,
    ),
    '',
    `notifications (${story.notifications.length}):`,
    ...(story.notifications.length === 0 ? ['  none'] : []),
    ...story.notifications.map(
      (n) =>
        `  ${n.kind}: ${n.status}, ${n.attempts} call${n.attempts === 1 ? '' : 's'}` +
        `${n.providerMessageId ? `, message ${n.providerMessageId}` : ''}${n.sentAt ? `, sent ${n.sentAt}` : ''}` +
        `${n.lastError ? `, last error: ${n.lastError}` : ''}${n.jobId ? `  [job ${n.jobId}]` : ''}`,
    ),
    '',
    `jobs (${story.jobIds.length}):`,
  ];
  if ('unknown' in jobs) lines.push(`  their states are unknown: ${jobs.unknown}`, ...story.jobIds.map((jobId) => `  ${jobId}`));
  else lines.push(...story.jobIds.map((jobId) => `  ${jobId}: ${jobs.states.get(jobId)}`));
  return lines;
}
