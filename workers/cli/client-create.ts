import type { Command } from 'commander';
import { createApiClient } from '../../shared/clients/create-client.ts';
import { IdGenerator } from '../../shared/ids.ts';
import { configFromEnv } from '../../shared/lifecycle.ts';

/** `client:create <name>`: a new API client; its key is printed once, alone on the last line (only a hash is stored). */
export function registerClientCreate(program: Command): void {
  program
    .command('client:create')
    .description('create an API client and print its new key once, alone on the last line (only a hash is stored)')
    .argument('<name>', 'a name for the client, 1-200 characters (e.g. the merchant app it is for)')
    .action(async (name: string) => {
      const config = configFromEnv(process.env);
      const { createDb } = await import('../../shared/db.ts');
      const db = createDb(config);
      try {
        const client = await createApiClient(db, new IdGenerator(config.nodeId), name);
        console.log(`created API client "${client.name}" (id ${client.id}). Its key is shown only now:`);
        console.log(client.key);
      } finally {
        await db.destroy();
      }
    });
}
