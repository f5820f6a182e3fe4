import type { Command } from 'commander';
import type { ApiClientRow } from '../../shared/clients/client-row.ts';
import { listApiClients } from '../../shared/clients/list-clients.ts';
import { formatRate, formatTime, withClientDb, type ClientCommandDeps } from './client-common.ts';

const HEADER = ['name', 'key prefix', 'created', 'last used', 'rate', 'revoked'] as const;

/** `client:list [--json]`: every API client with its key prefix, dates, rate and whether it is revoked. */
export function registerClientList(program: Command, deps: ClientCommandDeps): void {
  program
    .command('client:list')
    .description(
      'list the API clients: name, key prefix, created, last used (recorded once a minute per key by each web process), ' +
        'rate limit, revoked',
    )
    .option('--json', 'print one JSON document (an array of clients) instead of the table')
    .addHelpText('after', '\nExamples:\n  npm run cli -- client:list\n  npm run cli -- client:list --json')
    .action(async (options: { json?: boolean }) => {
      await withClientDb('client:list', deps, async (db, config) => {
        const clients = await listApiClients(db);
        if (options.json) {
          console.log(JSON.stringify(clients.map((client) => ({ ...client, defaultRatePerSecond: config.rateLimitPerSecond })), null, 2));
          return;
        }
        if (clients.length === 0) {
          console.log('no API clients yet (npm run cli -- client:create <name>)');
          return;
        }
        for (const line of table(clients.map((client) => row(client, config.rateLimitPerSecond)))) console.log(line);
      });
    });
}

function row(client: ApiClientRow, defaultRate: number): string[] {
  return [client.name, client.keyPrefix, formatTime(client.createdAt), formatTime(client.lastUsedAt), formatRate(client.ratePerSecond, defaultRate), formatTime(client.revokedAt)];
}

function table(rows: string[][]): string[] {
  const all = [[...HEADER], ...rows];
  const widths = HEADER.map((_, column) => Math.max(...all.map((cells) => cells[column]!.length)));
  return all.map((cells) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
}
