/**
 * The operators' command line: `npm run cli -- <command>`. Run with --help for the list.
 */
import { once } from 'node:events';
import cliProgress from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { WARM_UP_PAGE_SIZE, warmUpCacheJob } from '../jobs/warm-up-cache.ts';
import { createApiClient } from '../shared/clients/create-client.ts';
import { createDb } from '../shared/db.ts';
import { IdGenerator } from '../shared/ids.ts';
import { configFromEnv } from '../shared/lifecycle.ts';
import { createLogger } from '../shared/logger.ts';
import { createProducerRedis } from '../shared/redis.ts';
import { withDeadline } from '../shared/with-deadline.ts';

const program = new Command()
  .name('courier')
  .description('Courier operator commands (configuration comes from MYSQL_URL, REDIS_URL, ...)')
  .exitOverride()
  .showHelpAfterError();

program
  .command('client:create')
  .description('create an API client and print its new key once, alone on the last line (only a hash is stored)')
  .argument('<name>', 'a name for the client, 1-200 characters (e.g. the merchant app it is for)')
  .action(async (name: string) => {
    const config = configFromEnv(process.env);
    const db = createDb(config);
    try {
      const client = await createApiClient(db, new IdGenerator(config.nodeId), name);
      console.log(`created API client "${client.name}" (id ${client.id}). Its key is shown only now:`);
      console.log(client.key);
    } finally {
      await db.destroy();
    }
  });

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

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < 1 || parsed > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000');
  return parsed;
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`courier: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
