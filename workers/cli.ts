/**
 * The operators' command line: `npm run cli -- <command>`. Run with --help for the list.
 *
 * Each command is a file under workers/cli/ that registers itself, and one line below; the
 * session they share (MySQL and Redis opened on demand, SIGINT, the progress bar) is
 * workers/cli/session.ts, their formatting and option parsers beside it. A command loads knex,
 * ioredis and bullmq only when it runs, so `--help` answers at once.
 */
import { Command, CommanderError } from 'commander';
import { registerCacheWarm } from './cli/cache-warm.ts';
import { registerClientCreate } from './cli/client-create.ts';
import { registerClientLimit } from './cli/client-limit.ts';
import { registerClientList } from './cli/client-list.ts';
import { registerClientRevoke } from './cli/client-revoke.ts';
import { reasonOf } from './cli/format.ts';
import { registerOrdersReconcile } from './cli/orders-reconcile.ts';
import { registerOrdersRedrive } from './cli/orders-redrive.ts';
import { registerOrdersStuck } from './cli/orders-stuck.ts';
import { cliLogger, openDb, openRedis } from './cli/session.ts';
import { registerSwitchesList } from './cli/switches-list.ts';
import { registerSwitchesSet } from './cli/switches-set.ts';
import { registerOrdersShow } from './cli/orders-show.ts';

const program = new Command()
  .name('courier')
  .description('Courier operator commands (configuration comes from MYSQL_URL, REDIS_URL, ...)')
  .exitOverride()
  .showHelpAfterError();

// The commands, one line each, in the order --help lists them.
registerClientCreate(program, { cliLogger, openDb });
registerClientList(program, { cliLogger, openDb });
registerClientLimit(program, { cliLogger, openDb });
registerClientRevoke(program, { cliLogger, openDb });
registerCacheWarm(program);
registerOrdersStuck(program);
registerOrdersRedrive(program);
registerOrdersReconcile(program);
registerOrdersShow(program, { cliLogger, openDb, openRedis });
registerSwitchesList(program);
registerSwitchesSet(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`courier: ${reasonOf(error)}`);
  process.exit(1);
}
