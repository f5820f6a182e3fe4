import { InvalidArgumentError, type Command } from 'commander';
import { setClientRate } from '../../shared/clients/set-client-rate.ts';
import { formatRate, rateArgument, withClientDb, type ClientCommandDeps } from './client-common.ts';

/** `client:limit <name or key prefix> <requests per second | default>`: a client's own rate limit. */
export function registerClientLimit(program: Command, deps: ClientCommandDeps): void {
  program
    .command('client:limit')
    .description(
      "set an API client's rate limit, in requests per second over all its API calls (reads too); " +
        'the web processes apply it within AUTH_CACHE_TTL_SECONDS',
    )
    .argument('<client>', 'the client: its name, or its key prefix as client:list shows it (ck_...)')
    .argument('<rate>', 'requests per second (1-1000000), or "default" for RATE_LIMIT_PER_SECOND', (value: string) =>
      value === 'default' ? null : rateArgumentOrDefault(value),
    )
    .addHelpText('after', '\nExamples:\n  npm run cli -- client:limit "Noodle House app" 50\n  npm run cli -- client:limit ck_3f9a1b2 default')
    .action(async (name: string, rate: number | null) => {
      await withClientDb('client:limit', deps, async (db, config) => {
        const client = await setClientRate(db, name, rate);
        console.log(
          `API client "${client.name}" (${client.keyPrefix}) now has the rate ${formatRate(client.ratePerSecond, config.rateLimitPerSecond)}, ` +
            `in effect within ${config.authCacheTtlSeconds} s (AUTH_CACHE_TTL_SECONDS)`,
        );
      });
    });
}

function rateArgumentOrDefault(value: string): number {
  try {
    return rateArgument(value);
  } catch {
    throw new InvalidArgumentError('must be a whole number of requests per second from 1 to 1000000, or "default"');
  }
}
