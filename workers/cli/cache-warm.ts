import type { Command } from 'commander';
import { once } from 'node:events';
import { WARM_UP_PAGE_SIZE, warmUpCacheJob } from '../../jobs/warm-up-cache.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import { createLogger } from '../../shared/logger.ts';
import { withDeadline } from '../../shared/with-deadline.ts';
import { positiveInt } from './options.ts';
import { progressBar } from './session.ts';

/**
 * `cache:warm`: the cache warm-up the workers run at a web start and on WARMUP_CRON, run now in
 * this process (an operator's explicit request: the warm-up switch does not apply), with a
 * progress bar on a terminal.
 */
export function registerCacheWarm(program: Command): void {
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
      const [{ createDb }, { createProducerRedis }] = await Promise.all([import('../../shared/db.ts'), import('../../shared/redis.ts')]);
      const db = createDb(config, { logger, statementTimeoutMs: config.dbStatementTimeoutMs });
      const redis = createProducerRedis(config);
      redis.on('error', () => undefined); // the command's own calls report their failures
      const bar = await progressBar('warming |{bar}| {percentage}% | {value}/{total} orders, merchants, riders | {duration_formatted}');
      let barStarted = false;
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
                bar.start(total, loaded, {});
                barStarted = true;
              } else {
                bar.setTotal(total);
                bar.update(loaded);
              }
            },
          },
        );
        bar.stop();
        console.log(
          `warmed the cache (${config.cachePrefix}) in ${outcome.ms} ms: ${outcome.orders} active orders ` +
            `(${outcome.ordersWritten} written, ${outcome.orders - outcome.ordersWritten} already cached at their version or newer), ` +
            `${outcome.merchants} merchants, ${outcome.riders} riders`,
        );
      } finally {
        bar.stop();
        redis.disconnect();
        await db.destroy();
      }
    });
}
