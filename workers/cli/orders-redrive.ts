import { Option, type Command } from 'commander';
import type { RedriveBatch, RedrivenOrder } from '../../jobs/compensate-orders.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { FAILED_STATUSES, RETRY_STATE, type FailedStatus } from '../../shared/orders/state-machine.ts';
import { STUCK_LIST_MAX, listStuckOrders, readOrderStates } from '../../shared/orders/stuck-orders.ts';
import { formatDuration, reasonOf } from './format.ts';
import { DEFAULT_LIST_LIMIT, DEFAULT_OLDER_THAN_MS, MAX_IDS, duration, failedState, idList, positiveInt } from './options.ts';
import { cliLogger, operatorSession } from './session.ts';

/**
 * `orders:redrive`: an operator's chosen set of failed orders sent back for another try now, past
 * any attempt budget, batch after batch through the routine compensation runs (`redriveBatch`,
 * reached through workers/order-maintenance.ts).
 */
export function registerOrdersRedrive(program: Command): void {
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
        const chosenFrom = options.ids
          ? `${chosen.length} chosen by id`
          : `${chosen.length} chosen (the oldest ${state} orders unchanged for more than ${formatDuration(options.olderThan)}, --limit ${options.limit})`;
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
}
