/**
 * The operators' command line: `npm run cli -- <command>`. Run with --help for the list.
 */
import { Command, CommanderError } from 'commander';
import { createApiClient } from '../shared/clients/create-client.ts';
import { createDb } from '../shared/db.ts';
import { IdGenerator } from '../shared/ids.ts';
import { configFromEnv } from '../shared/lifecycle.ts';

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

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`courier: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
