import { Option, type Command } from 'commander';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { STUCK_LIST_MAX, STUCK_STATUSES, listStuckOrders, summarizeStuckOrders, type StuckOrder, type StuckStatus } from '../../shared/orders/stuck-orders.ts';
import { columns, formatDuration, truncate } from './format.ts';
import { ALL_STUCK_STATUSES, DEFAULT_LIST_LIMIT, DEFAULT_OLDER_THAN_MS, duration, positiveInt, stuckStates } from './options.ts';
import { cliLogger, openDb } from './session.ts';

/** `orders:stuck`: per state, how many orders have not moved for a while and the oldest age, then the oldest of them. */
export function registerOrdersStuck(program: Command): void {
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
        for (const line of stuckOrderLines(orders)) console.log(line);
      } finally {
        await db.destroy();
      }
    });
}

function stuckOrderLines(orders: readonly StuckOrder[]): string[] {
  const rows = orders.map((order) => [
    order.id,
    order.status,
    formatDuration(order.ageMs),
    String(order.attempts),
    order.nextAttemptAt === null ? '-' : `${order.nextAttemptAt.toISOString().slice(0, 19).replace('T', ' ')}Z (${nextAttempt(order.nextAttemptInMs ?? 0)})`,
    truncate(order.lastError ?? '-', 60),
  ]);
  return columns(['ID', 'STATE', 'AGE', 'ATTEMPTS', 'NEXT ATTEMPT', 'LAST ERROR'], rows);
}

function nextAttempt(inMs: number): string {
  return inMs >= 0 ? `in ${formatDuration(inMs)}` : `due ${formatDuration(-inMs)} ago`;
}
