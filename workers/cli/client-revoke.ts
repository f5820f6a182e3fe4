import type { Command } from 'commander';
import { revokeApiClient } from '../../shared/clients/revoke-client.ts';
import { formatTime, withClientDb, type ClientCommandDeps } from './client-common.ts';

/** `client:revoke <name or key prefix>`: the client's key stops working within AUTH_CACHE_TTL_SECONDS. */
export function registerClientRevoke(program: Command, deps: ClientCommandDeps): void {
  program
    .command('client:revoke')
    .description("revoke an API client's key: the web processes refuse it (401) within AUTH_CACHE_TTL_SECONDS")
    .argument('<client>', 'the client: its name, or its key prefix as client:list shows it (ck_...)')
    .addHelpText('after', '\nExamples:\n  npm run cli -- client:revoke "Noodle House app"\n  npm run cli -- client:revoke ck_3f9a1b2')
    .action(async (name: string) => {
      await withClientDb('client:revoke', deps, async (db, config) => {
        const { client, alreadyRevoked } = await revokeApiClient(db, name);
        console.log(
          alreadyRevoked
            ? `API client "${client.name}" (${client.keyPrefix}) was already revoked at ${formatTime(client.revokedAt)}`
            : `revoked API client "${client.name}" (${client.keyPrefix}) at ${formatTime(client.revokedAt)}: ` +
                `its key is refused within ${config.authCacheTtlSeconds} s (AUTH_CACHE_TTL_SECONDS)`,
        );
      });
    });
}
