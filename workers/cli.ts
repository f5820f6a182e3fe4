/**
 * The operators' command line: `npm run cli -- <command>`. Run with --help for the list.
 */
import { once } from 'node:events';
import cliProgress from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import type { RedriveBatch, RedrivenOrder } from '../jobs/compensate-orders.ts';
import type { ReconcileOutcome } from '../jobs/reconcile-orders.ts';
import { WARM_UP_PAGE_SIZE, warmUpCacheJob } from '../jobs/warm-up-cache.ts';
import type { Config } from '../shared/config.ts';
import { createDb, databaseName, type Db } from '../shared/db.ts';
import { isIdString } from '../shared/ids.ts';
import { configFromEnv } from '../shared/lifecycle.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { FAILED_STATUSES, RETRY_STATE, type FailedStatus } from '../shared/orders/state-machine.ts';
import {
  STUCK_LIST_MAX,
  STUCK_STATUSES,
  listStuckOrders,
  readOrderStates,
  summarizeStuckOrders,
  type StuckOrder,
  type StuckStatus,
} from '../shared/orders/stuck-orders.ts';
import { createProducerRedis, type Redis } from '../shared/redis.ts';
import { withDeadline } from '../shared/with-deadline.ts';
import { registerClientCreate } from './cli/client-create.ts';
import { registerClientLimit } from './cli/client-limit.ts';
import { registerClientList } from './cli/client-list.ts';
import { registerClientRevoke } from './cli/client-revoke.ts';
import { registerOrdersShow } from './cli/orders-show.ts';
import { createOrderMaintenance, type OrderMaintenance } from './order-maintenance.ts';

const program = new Command()
  .name('courier')
  .description('Courier operator commands (configuration comes from MYSQL_URL, REDIS_URL, ...)')
  .exitOverride()
  .showHelpAfterError();

program
  .command('cache:warm')
  .description(
    'warm the Redis cache now, in this process: every active order, merchant and rider position ' +
      '(what the workers do when a web process starts and on the WARMUP_CRON schedule); prints what it loaded',
  )
  .option('--page-size <rows>', 'rows read from MySQL and written to Redis per round trip', positiveInt, WARM_UP_PAGE_SIZE)
  .action(async (options: { pageSize: number }) => {
    const config = configFromEnv(process.env);
    // The summary below is the report; the job's own log line would only repeat it.
    const logger = await createLogger({ logLevel: 'warn', logFormat: config.logFormat }, 'cli');
    const db = createDb(config, { logger });
    const redis = createProducerRedis(config);
    redis.on('error', () => undefined); // the command's own calls report their failures
    // Draws on a terminal (stderr) only; piped or in CI it stays silent and the summary says it all.
    const bar = new cliProgress.SingleBar(
      { format: 'warming |{bar}| {percentage}% | {value}/{total} orders, merchants, riders | {duration_formatted}', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let barStarted = false;
    const stopBar = () => {
      if (barStarted) bar.stop();
      barStarted = false;
    };
    try {
      if (redis.status !== 'ready') await withDeadline(once(redis, 'ready'), config.redisTimeoutMs * 5);
      const outcome = await warmUpCacheJob(
        { reason: 'cli' },
        {
          db,
          redis,
          config,
          logger,
          pageSize: options.pageSize,
          onProgress: ({ loaded, total }) => {
            if (!barStarted) {
              bar.start(total, loaded);
              barStarted = true;
            } else {
              bar.setTotal(total);
              bar.update(loaded);
            }
          },
        },
      );
      stopBar();
      console.log(
        `warmed the cache (${config.cachePrefix}) in ${outcome.ms} ms: ${outcome.orders} active orders ` +
          `(${outcome.ordersWritten} written, ${outcome.orders - outcome.ordersWritten} already cached at their version or newer), ` +
          `${outcome.merchants} merchants, ${outcome.riders} riders`,
      );
    } finally {
      stopBar();
      redis.disconnect();
      await db.destroy();
    }
  });

// ---------------------------------------------------------------------------------------------
// Stuck orders: list them, re-drive a chosen set, force a reconcile.
// ---------------------------------------------------------------------------------------------

const DEFAULT_OLDER_THAN_MS = 60_000;
const DEFAULT_LIST_LIMIT = 20;
const MAX_IDS = 10_000;
/** The default of --state, recognised by identity so a first --state replaces it instead of adding to it. */
const ALL_STUCK_STATUSES: StuckStatus[] = [...STUCK_STATUSES];

program
  .command('orders:stuck')
  .summary('list orders stuck in CREATED, PRICED, PRICING_FAILED, DISPATCH_FAILED, by state and age')
  .description(
    'list orders that have not moved for a while: per state, how many and the oldest age, then the oldest ' +
      'orders first (id, state, age, attempts, next attempt, last error). Age is the time since the order last changed',
  )
  .addOption(
    new Option('--state <states...>', `states to look at, any of ${STUCK_STATUSES.join(', ')} (space or comma separated)`)
      .argParser(stuckStates)
      .default(ALL_STUCK_STATUSES, 'all four'),
  )
  .addOption(
    new Option('--older-than <duration>', 'only orders unchanged for longer than this: 30s, 10m, 2h, 1d (0s: all)')
      .argParser(duration)
      .default(DEFAULT_OLDER_THAN_MS, '1m'),
  )
  .option('--limit <n>', `orders listed at most, oldest first (1-${STUCK_LIST_MAX})`, positiveInt, DEFAULT_LIST_LIMIT)
  .option('--json', 'print one JSON document (summary and orders) instead of the text report')
  .addHelpText(
    'after',
    '\nExamples:\n' +
      '  npm run cli -- orders:stuck\n' +
      '  npm run cli -- orders:stuck --state PRICING_FAILED DISPATCH_FAILED --older-than 10m --limit 50\n' +
      '  npm run cli -- orders:stuck --state CREATED --older-than 2m --json',
  )
  .action(async (options: { state: StuckStatus[]; olderThan: number; limit: number; json?: boolean }) => {
    const config = configFromEnv(process.env);
    const logger = cliLogger(config);
    const db = await openDb(config, logger);
    try {
      const query = { statuses: options.state, olderThanMs: options.olderThan };
      const summary = await summarizeStuckOrders(db, query);
      const orders = await listStuckOrders(db, { ...query, limit: options.limit });
      const total = summary.reduce((sum, state) => sum + state.count, 0);
      if (options.json) {
        console.log(
          JSON.stringify(
            {
              states: options.state,
              olderThanMs: options.olderThan,
              limit: options.limit,
              total,
              summary,
              orders: orders.map((order) => ({
                ...order,
                nextAttemptAt: order.nextAttemptAt?.toISOString() ?? null,
                updatedAt: order.updatedAt.toISOString(),
              })),
            },
            null,
            2,
          ),
        );
        return;
      }
      console.log(`orders unchanged for more than ${formatDuration(options.olderThan)}, by state:`);
      for (const state of summary) {
        const oldest = state.oldestAgeMs === null ? '' : `  oldest ${formatDuration(state.oldestAgeMs)}`;
        console.log(`  ${state.status.padEnd(16)} ${String(state.count).padStart(7)}${oldest}`);
      }
      if (total === 0) {
        console.log(`no stuck orders in ${options.state.join(', ')}`);
        return;
      }
      console.log(orders.length < total ? `${total} stuck orders; the ${orders.length} oldest (--limit):` : `${total} stuck orders, oldest first:`);
      printStuckOrders(orders);
    } finally {
      await db.destroy();
    }
  });

program
  .command('orders:redrive')
  .summary('re-drive a chosen set of PRICING_FAILED or DISPATCH_FAILED orders now, past any attempt budget')
  .description(
    'send a chosen set of failed orders back for another try now (PRICING_FAILED -> CREATED and a price job, ' +
      'DISPATCH_FAILED -> PRICED and a dispatch run of its zone), whether their next attempt is due or not and past any ' +
      'attempt budget: an operator\'s decision, recorded in order_events with actor "operator". The set is --ids, or ' +
      'the oldest orders of --state unchanged for --older-than (what orders:stuck lists with the same options). ' +
      'Orders busy elsewhere or no longer in that state are skipped and reported',
  )
  .addOption(
    new Option('--state <state>', `(required) the state the orders are in: ${FAILED_STATUSES.join(' or ')}`).argParser(failedState).makeOptionMandatory(),
  )
  .addOption(
    new Option('--ids <ids>', `exactly these orders, comma separated (at most ${MAX_IDS}); instead of --older-than and --limit`)
      .argParser(idList)
      .conflicts(['olderThan', 'limit']),
  )
  .addOption(
    new Option('--older-than <duration>', 'without --ids: only orders unchanged for longer than this: 30s, 10m, 2h, 1d (0s: all)')
      .argParser(duration)
      .default(DEFAULT_OLDER_THAN_MS, '1m'),
  )
  .option('--limit <n>', `without --ids: re-drive at most this many, oldest first (1-${STUCK_LIST_MAX})`, positiveInt, DEFAULT_LIST_LIMIT)
  .option('--dry-run', 'print what would be re-driven (the count and the ids) and change nothing: no row, no job')
  .addHelpText(
    'after',
    '\nExamples:\n' +
      '  npm run cli -- orders:redrive --state DISPATCH_FAILED --older-than 10m --limit 100 --dry-run\n' +
      '  npm run cli -- orders:redrive --state PRICING_FAILED --ids 382636929890876416,382636929890876417',
  )
  .action(async (options: { state: FailedStatus; ids?: string[]; olderThan: number; limit: number; dryRun?: boolean }) => {
    const config = configFromEnv(process.env);
    const logger = cliLogger(config);
    const { state } = options;
    const to = RETRY_STATE[state];
    const barFormat = `re-driving ${state} |{bar}| {value}/{total} orders | {redriven} re-driven, {skipped} skipped | {duration_formatted}`;
    await operatorSession(config, logger, barFormat, async ({ db, signal, bar, maintenance: openMaintenance }) => {
      const chosen = options.ids
        ? options.ids
        : (await listStuckOrders(db, { statuses: [state], olderThanMs: options.olderThan, limit: options.limit })).map((order) => order.id);
      const chosenFrom = options.ids ? `${chosen.length} chosen by id` : `${chosen.length} chosen (the oldest ${state} orders unchanged for more than ${formatDuration(options.olderThan)}, --limit ${options.limit})`;
      if (chosen.length === 0) {
        console.log(`orders:redrive: no ${state} order unchanged for more than ${formatDuration(options.olderThan)}: nothing to re-drive`);
        return;
      }

      if (options.dryRun) {
        const states = await readOrderStates(db, chosen, config.maintenanceBatchSize);
        let would = 0;
        for (const id of chosen) {
          const now = states.get(id);
          if (now?.status === state) {
            would += 1;
            console.log(`would re-drive ${id}: ${state} for ${formatDuration(now.ageMs)}, attempts ${now.attempts} -> ${now.attempts + 1}, to ${to}`);
          } else {
            console.log(`would skip ${id}: ${now ? `it is ${now.status}, not ${state}` : 'no such order'}`);
          }
        }
        console.log(
          `orders:redrive (dry run, nothing changed): ${chosenFrom}; would re-drive ${would} (${state} -> ${to}, past any attempt budget), ` +
            `would skip ${chosen.length - would} (not ${state})`,
        );
        return;
      }

      const maintenance = await openMaintenance();
      const redriven: RedrivenOrder[] = [];
      const escalated: string[] = [];
      let done = 0;
      bar.start(chosen.length, 0, { redriven: 0, skipped: 0 });
      for (let start = 0; start < chosen.length; start += config.maintenanceBatchSize) {
        if (signal.aborted) break;
        const orderIds = chosen.slice(start, start + config.maintenanceBatchSize);
        let batch: RedriveBatch;
        try {
          // The same routine compensation runs, for the operator's set, past any budget.
          batch = await maintenance.redrive({ status: state, limit: orderIds.length, orderIds, ignoreBudget: true, actor: 'operator' });
        } catch (error) {
          // The batches before this one stay done; orders:stuck shows where the others are.
          throw new Error(`${reasonOf(error)} (${redriven.length} of ${chosen.length} chosen orders were re-driven and enqueued before this batch)`);
        }
        if (!batch.enqueued) {
          throw new Error(
            `${batch.redriven.length} orders were re-driven in MySQL (now ${to}) but their jobs could not be enqueued (${reasonOf(batch.enqueueError)}); ` +
              `the reconciler enqueues them (npm run cli -- orders:reconcile). ${redriven.length} before them were re-driven and enqueued`,
          );
        }
        redriven.push(...batch.redriven);
        escalated.push(...batch.escalated);
        done += orderIds.length;
        bar.update(done, { redriven: redriven.length, skipped: done - redriven.length - escalated.length });
      }
      bar.stop();

      const moved = new Set([...redriven.map((order) => order.id), ...escalated]);
      const untouched = chosen.slice(0, done).filter((id) => !moved.has(id));
      const states = await readOrderStates(db, untouched, config.maintenanceBatchSize);
      for (const order of redriven) console.log(`re-driven ${order.id}: ${state} -> ${order.to}, attempt ${order.attempts}`);
      for (const id of escalated) console.log(`escalated ${id}: CANCELLED (attempt budget spent)`);
      for (const id of untouched) {
        const now = states.get(id);
        const why = !now ? 'no such order' : now.status === state ? `busy (another writer held it); still ${state}, try again` : `it is ${now.status}, not ${state}`;
        console.log(`skipped ${id}: ${why}`);
      }
      const notReached = chosen.length - done;
      console.log(
        `orders:redrive: ${chosenFrom}; re-driven ${redriven.length} (${state} -> ${to}, past any attempt budget, jobs enqueued), ` +
          `skipped ${untouched.length} (busy, or no longer ${state})` +
          (escalated.length > 0 ? `, escalated ${escalated.length}` : '') +
          (notReached > 0 ? `; interrupted: ${notReached} not tried` : ''),
      );
      if (notReached > 0) process.exitCode = 130;
    });
  });

program
  .command('orders:reconcile')
  .summary('reconcile MySQL with the queues now: re-enqueue what Redis lost')
  .description(
    'reconcile now, in this process (what the scheduler does on RECONCILE_CRON): CREATED orders past ' +
      'RECONCILE_CREATED_AFTER_MS without a price job are enqueued again (one whose job finished is recorded ' +
      'PRICING_FAILED), PRICED orders waiting past RECONCILE_STUCK_AFTER_MS get their zone\'s dispatch booked again, ' +
      'PENDING notifications past RECONCILE_NOTIFY_AFTER_MS without a live job are enqueued again (or left to an operator ' +
      'once their attempt budget is spent); prints what it did',
  )
  .option('--dry-run', 'look and count only: say what would be done, enqueue nothing and change nothing')
  .addHelpText('after', '\nExamples:\n  npm run cli -- orders:reconcile --dry-run\n  npm run cli -- orders:reconcile')
  .action(async (options: { dryRun?: boolean }) => {
    const config = configFromEnv(process.env);
    const logger = cliLogger(config);
    const dryRun = options.dryRun ?? false;
    const barFormat = `reconciling${dryRun ? ' (dry run)' : ''} | {created} CREATED checked | {priced} PRICED stuck | {notifications} notifications checked | {duration_formatted}`;
    await operatorSession(config, logger, barFormat, async ({ signal, bar, maintenance: openMaintenance }) => {
      const maintenance = await openMaintenance();
      bar.start(1, 0, { created: 0, priced: 0, notifications: 0 });
      const outcome = await maintenance.reconcile(
        { reason: 'cli' },
        {
          dryRun,
          signal,
          onProgress: (progress) =>
            bar.update(0, { created: progress.created.checked, priced: progress.priced.stuck, notifications: progress.notifications.checked }),
        },
      );
      bar.stop();
      printReconcileOutcome(outcome, config);
    });
  });

function printStuckOrders(orders: readonly StuckOrder[]): void {
  const header = ['ID', 'STATE', 'AGE', 'ATTEMPTS', 'NEXT ATTEMPT', 'LAST ERROR'];
  const rows = orders.map((order) => [
    order.id,
    order.status,
    formatDuration(order.ageMs),
    String(order.attempts),
    order.nextAttemptAt === null
      ? '-'
      : `${order.nextAttemptAt.toISOString().slice(0, 19).replace('T', ' ')}Z (${
          (order.nextAttemptInMs ?? 0) >= 0 ? `in ${formatDuration(order.nextAttemptInMs ?? 0)}` : `due ${formatDuration(-(order.nextAttemptInMs ?? 0))} ago`
        })`,
    truncate(order.lastError ?? '-', 60),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) {
    console.log(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '));
  }
}

function printReconcileOutcome(outcome: ReconcileOutcome, config: Config): void {
  const { created, priced, notifications } = outcome;
  const would = outcome.dryRun;
  const after = (ms: number) => formatDuration(ms);
  console.log(
    `CREATED orders unchanged for more than ${after(config.reconcileCreatedAfterMs)}: ${created.checked} checked, ` +
      `${created.live} with a live price job, ${created.enqueued} without one ${would ? 'would be' : ''}${would ? ' ' : ''}enqueued again, ` +
      `${created.finished} whose job had finished ${would ? 'would be recorded' : 'recorded'} PRICING_FAILED`,
  );
  console.log(
    `PRICED orders waiting more than ${after(config.reconcileStuckAfterMs)}: ${priced.stuck}; ` +
      `dispatch ${would ? 'would be booked' : 'booked'} again for ${priced.zones} zones`,
  );
  console.log(
    `PENDING notifications untouched for more than ${after(config.reconcileNotifyAfterMs)}: ${notifications.checked} checked, ` +
      `${notifications.live} with a live job, ${notifications.enqueued} ${would ? 'would be enqueued' : 'enqueued'} again, ` +
      `${notifications.givenUp} left to an operator (attempt budget of ${config.notifyAttemptBudget} spent)`,
  );
  console.log(
    would
      ? `orders:reconcile (dry run, nothing changed) in ${outcome.ms} ms: would enqueue ${created.enqueued} CREATED orders again, ` +
          `would record ${created.finished} PRICING_FAILED, would re-book ${priced.zones} zones' dispatch for ${priced.stuck} PRICED orders, ` +
          `would enqueue ${notifications.enqueued} notifications again, ${notifications.givenUp} left to an operator`
      : `orders:reconcile in ${outcome.ms} ms: ${created.enqueued} CREATED orders enqueued again, ${created.finished} recorded PRICING_FAILED, ` +
          `${priced.zones} zones' dispatch re-booked for ${priced.stuck} PRICED orders, ${notifications.enqueued} notifications enqueued again, ` +
          `${notifications.givenUp} left to an operator`,
  );
}

/** A logger for the commands' own runs: warnings and errors only, on stderr (stdout carries the report). */
function cliLogger(config: Pick<Config, 'logLevel'>): Logger {
  const level = config.logLevel === 'silent' ? 'silent' : 'warn';
  return pino({ name: 'cli', level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: true }));
}

interface OperatorSession {
  readonly db: Db;
  /** Aborted by the first SIGINT: stop between two batches. */
  readonly signal: AbortSignal;
  /** The command's progress bar; stopped, if it is running, when the session ends. */
  readonly bar: { start(total: number, value: number, payload: object): void; update(value: number, payload: object): void; stop(): void };
  /** Redis and the maintenance runs, opened on first use (a dry run may need neither). */
  maintenance(): Promise<OrderMaintenance>;
}

/**
 * What an operator command that changes orders holds for its run: MySQL, the SIGINT handler, a
 * progress bar and, on demand, Redis with the maintenance runs; all of it closed when the run
 * ends, however it ends.
 */
async function operatorSession(config: Config, logger: Logger, barFormat: string, run: (session: OperatorSession) => Promise<void>): Promise<void> {
  const db = await openDb(config, logger);
  const interrupt = onInterrupt();
  const progressBar = new cliProgress.SingleBar({ format: barFormat, hideCursor: true }, cliProgress.Presets.shades_classic);
  let barRunning = false;
  const bar: OperatorSession['bar'] = {
    start: (total, startValue, payload) => {
      progressBar.start(total, startValue, payload);
      barRunning = true;
    },
    update: (value, payload) => progressBar.update(value, payload),
    stop: () => {
      if (barRunning) progressBar.stop();
      barRunning = false;
    },
  };
  let redis: Redis | undefined;
  let maintenance: OrderMaintenance | undefined;
  try {
    await run({
      db,
      signal: interrupt.signal,
      bar,
      maintenance: async () => {
        redis ??= await openRedis(config);
        maintenance ??= createOrderMaintenance(config, { db, redis, logger });
        return maintenance;
      },
    });
  } finally {
    bar.stop();
    interrupt.dispose();
    await maintenance?.close();
    redis?.disconnect();
    await db.destroy();
  }
}

/** A pool on MySQL that has answered once, or a one-line reason within about twice DB_TIMEOUT_MS. */
async function openDb(config: Config, logger: Logger): Promise<Db> {
  // knex warns of every failed connect with a stack; the command reports the failure in one line.
  const db = createDb(config, { logger: logger.child({}, { level: logger.level === 'silent' ? 'silent' : 'error' }) });
  try {
    await withDeadline(db.raw('SELECT 1'), config.dbTimeoutMs * 2);
    return db;
  } catch (error) {
    await withDeadline(db.destroy(), config.dbTimeoutMs).catch(() => undefined);
    const url = new URL(config.mysqlUrl);
    const reason =
      error instanceof Error && (error.name === 'KnexTimeoutError' || error.name === 'DeadlineExceeded')
        ? `no answer within ${config.dbTimeoutMs} ms (DB_TIMEOUT_MS)`
        : reasonOf(error);
    throw new Error(`MySQL is not reachable at ${url.hostname}:${url.port || 3306}/${databaseName(config.mysqlUrl)}: ${reason}`);
  }
}

/** A Redis connection that is ready, or a one-line reason within about five REDIS_TIMEOUT_MS. */
async function openRedis(config: Config): Promise<Redis> {
  const redis = createProducerRedis(config);
  redis.on('error', () => undefined); // the command's own calls report their failures
  try {
    if (redis.status !== 'ready') await withDeadline(once(redis, 'ready'), config.redisTimeoutMs * 5);
    return redis;
  } catch (error) {
    redis.disconnect();
    const url = new URL(config.redisUrl);
    throw new Error(`Redis is not reachable at ${url.hostname}:${url.port || 6379}: ${reasonOf(error)}`);
  }
}

/** The first SIGINT stops a run between two batches (what is done stays done); a second one exits at once. */
function onInterrupt(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = () => {
    process.stderr.write('\ninterrupted: stopping after the batch in flight (Ctrl-C again to exit now)\n');
    controller.abort(new Error('interrupted (SIGINT): stopped between two batches; what was done before stays done'));
    process.off('SIGINT', handler);
  };
  process.on('SIGINT', handler);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', handler) };
}

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || (typeof code === 'string' ? code : error.name);
    return oneLine(message);
  }
  return oneLine(String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function truncate(text: string, max: number): string {
  const flat = oneLine(text);
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_DURATION_MS = 365 * DURATION_UNITS_MS.d;

function duration(value: string): number {
  const match = /^(\d{1,12})(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration like 30s, 10m, 2h or 1d');
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS];
  if (ms > MAX_DURATION_MS) throw new InvalidArgumentError('must be at most 365d');
  return ms;
}

/** 850ms, 45s, 12m 5s, 3h 20m, 2d 4h. */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const seconds = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(seconds / 86_400), 'd'],
    [Math.floor(seconds / 3600) % 24, 'h'],
    [Math.floor(seconds / 60) % 60, 'm'],
    [seconds % 60, 's'],
  ];
  const first = parts.findIndex(([value]) => value > 0);
  return parts
    .slice(first, first + 2)
    .filter(([value], index) => index === 0 || value > 0)
    .map(([value, unit]) => `${value}${unit}`)
    .join(' ');
}

function statesIn<T extends string>(value: string, allowed: readonly T[]): T[] {
  const names = value.split(',').map((name) => name.trim().toUpperCase()).filter((name) => name !== '');
  if (names.length === 0) throw new InvalidArgumentError(`must be one of ${allowed.join(', ')}`);
  for (const name of names) {
    if (!(allowed as readonly string[]).includes(name)) throw new InvalidArgumentError(`"${name}" is not one of ${allowed.join(', ')}`);
  }
  return names as T[];
}

function stuckStates(value: string, previous: StuckStatus[] | undefined): StuckStatus[] {
  const earlier = previous === undefined || previous === ALL_STUCK_STATUSES ? [] : previous;
  return [...new Set([...earlier, ...statesIn(value, STUCK_STATUSES)])];
}

function failedState(value: string): FailedStatus {
  const states = statesIn(value, FAILED_STATUSES);
  if (states.length !== 1) throw new InvalidArgumentError(`must be one state: ${FAILED_STATUSES.join(' or ')}`);
  return states[0]!;
}

function idList(value: string, previous: string[] | undefined): string[] {
  const ids = value.split(',').map((id) => id.trim()).filter((id) => id !== '');
  if (ids.length === 0) throw new InvalidArgumentError('must list at least one order id');
  for (const id of ids) {
    if (!isIdString(id)) throw new InvalidArgumentError(`"${id}" is not an order id (a positive 64-bit decimal number)`);
  }
  const all = [...new Set([...(previous ?? []), ...ids])];
  if (all.length > MAX_IDS) throw new InvalidArgumentError(`at most ${MAX_IDS} ids at a time`);
  return all;
}

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < 1 || parsed > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000');
  return parsed;
}

registerOrdersShow(program, { cliLogger, openDb, openRedis });
registerClientCreate(program, { cliLogger, openDb });
registerClientList(program, { cliLogger, openDb });
registerClientLimit(program, { cliLogger, openDb });
registerClientRevoke(program, { cliLogger, openDb });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`courier: ${reasonOf(error)}`);
  process.exit(1);
}
