import type { Command } from 'commander';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { formatRate, rateArgument, withClientDb, type ClientCommandDeps } from './client-common.ts';

/** `client:create <name> [--rate <requests per second>]`: a new API client; its key is printed once, alone on the last line. */
export function registerClientCreate(program: Command, deps: ClientCommandDeps): void {
  program
    .command('client:create')
    .description('create an API client and print its new key once, alone on the last line (only a hash is stored)')
    .argument('<name>', 'a name for the client, 1-200 characters (e.g. the merchant app it is for)')
    .option('--rate <requests per second>', 'its own rate limit, over all its API calls (default: RATE_LIMIT_PER_SECOND)', rateArgument)
    .addHelpText('after', '\nExamples:\n  npm run cli -- client:create "Noodle House app"\n  npm run cli -- client:create "Big aggregator" --rate 5000')
    .action(async (name: string, options: { rate?: number }) => {
      await withClientDb('client:create', deps, async (db, config) => {
        const client = await createApiClient(db, new IdGenerator(config.nodeId), name, { ratePerSecond: options.rate ?? null });
        console.log(
          `created API client "${client.name}" (id ${client.id}, rate ${formatRate(client.ratePerSecond, config.rateLimitPerSecond)}). Its key is shown only now:`,
        );
        console.log(client.key);
      });
    });
}
