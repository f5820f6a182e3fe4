import type { Command } from 'commander';
import type { ReconcileOutcome } from '../../jobs/reconcile-orders.ts';
import type { Config } from '../../shared/config.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { formatDuration } from './format.ts';
import { cliLogger, operatorSession } from './session.ts';

/** `orders:reconcile`: the reconciler's run, now, in this process (what the scheduler does on RECONCILE_CRON). */
export function registerOrdersReconcile(program: Command): void {
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
        for (const line of reconcileReport(outcome, config)) console.log(line);
      });
    });
}

function reconcileReport(outcome: ReconcileOutcome, config: Config): string[] {
  const { created, priced, notifications } = outcome;
  const would = outcome.dryRun;
  const after = (ms: number) => formatDuration(ms);
  return [
    `CREATED orders unchanged for more than ${after(config.reconcileCreatedAfterMs)}: ${created.checked} checked, ` +
      `${created.live} with a live price job, ${created.enqueued} without one ${would ? 'would be' : ''}${would ? ' ' : ''}enqueued again, ` +
      `${created.finished} whose job had finished ${would ? 'would be recorded' : 'recorded'} PRICING_FAILED`,
    `PRICED orders waiting more than ${after(config.reconcileStuckAfterMs)}: ${priced.stuck}; ` +
      `dispatch ${would ? 'would be booked' : 'booked'} again for ${priced.zones} zones`,
    `PENDING notifications untouched for more than ${after(config.reconcileNotifyAfterMs)}: ${notifications.checked} checked, ` +
      `${notifications.live} with a live job, ${notifications.enqueued} ${would ? 'would be enqueued' : 'enqueued'} again, ` +
      `${notifications.givenUp} left to an operator (attempt budget of ${config.notifyAttemptBudget} spent)`,
    would
      ? `orders:reconcile (dry run, nothing changed) in ${outcome.ms} ms: would enqueue ${created.enqueued} CREATED orders again, ` +
        `would record ${created.finished} PRICING_FAILED, would re-book ${priced.zones} zones' dispatch for ${priced.stuck} PRICED orders, ` +
        `would enqueue ${notifications.enqueued} notifications again, ${notifications.givenUp} left to an operator`
      : `orders:reconcile in ${outcome.ms} ms: ${created.enqueued} CREATED orders enqueued again, ${created.finished} recorded PRICING_FAILED, ` +
        `${priced.zones} zones' dispatch re-booked for ${priced.stuck} PRICED orders, ${notifications.enqueued} notifications enqueued again, ` +
        `${notifications.givenUp} left to an operator`,
  ];
}
