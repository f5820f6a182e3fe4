import { InvalidArgumentError } from 'commander';
import type { Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db.ts';
import { ClientLookupError } from '../../shared/errors/index.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';
import type { Logger } from '../../shared/logger.ts';
import { checkRate } from '../../shared/clients/set-client-rate.ts';

/** What the client:* commands need of the CLI's session helpers (workers/cli.ts). */
export interface ClientCommandDeps {
  readonly cliLogger: (config: Config) => Logger;
  readonly openDb: (config: Config, logger: Logger) => Promise<Db>;
}

/** A --rate / <rate> argument: a whole number of requests per second. */
export function rateArgument(value: string): number {
  const parsed = Number(value);
  try {
    if (!/^\d+$/.test(value.trim())) throw new RangeError('');
    return checkRate(parsed)!;
  } catch {
    throw new InvalidArgumentError('must be a whole number of requests per second from 1 to 1000000');
  }
}

/** `2026-12-02 19:21:05Z`, or '-' for none. */
export function formatTime(date: Date | null): string {
  return date ? `${date.toISOString().slice(0, 19).replace('T', ' ')}Z` : '-';
}

export function formatRate(rate: number | null, defaultRate: number): string {
  return rate === null ? `${defaultRate}/s (default)` : `${rate}/s`;
}

/**
 * Runs a command against MySQL; a client the operator named that is missing or ambiguous is one
 * line on stderr starting with its code (CLIENT_NOT_FOUND, CLIENT_AMBIGUOUS) and exit code 1.
 */
export async function withClientDb(command: string, deps: ClientCommandDeps, work: (db: Db, config: Config) => Promise<void>): Promise<void> {
  const config = configFromEnv(process.env);
  const db = await deps.openDb(config, deps.cliLogger(config));
  try {
    await work(db, config);
  } catch (error) {
    if (!(error instanceof ClientLookupError)) throw error;
    console.error(`${command}: ${error.code}: ${error.message}`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}
