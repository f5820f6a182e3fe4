/**
 * The Node half of `npm run setup`: creates the database if it is missing, runs the migrations,
 * and (unless --no-demo) loads the demo data and prints the demo client's API key.
 * Idempotent: on a set-up machine it only checks.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashApiKey } from '../shared/clients/api-keys.ts';
import { createApiClient, rotateApiKey } from '../shared/clients/create-client.ts';
import { loadConfig } from '../shared/config.ts';
import { createDb, databaseName, type Db } from '../shared/db.ts';
import { seedDemoData } from '../shared/demo/seed-demo-data.ts';
import { IdGenerator } from '../shared/ids.ts';
import { migrateLatest } from '../shared/migrate.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEMO_KEY_FILE = join(ROOT, '.courier', 'demo-client.key');
const DEMO_CLIENT_NAME = 'demo';

async function ensureDemoClient(db: Db, ids: IdGenerator): Promise<string> {
  const saved = existsSync(DEMO_KEY_FILE) ? readFileSync(DEMO_KEY_FILE, 'utf8').trim() : '';
  if (saved) {
    const found = await db('api_clients').where({ key_hash: hashApiKey(saved) }).whereNull('revoked_at').first();
    if (found) return saved;
  }
  const existing = await db('api_clients').where({ name: DEMO_CLIENT_NAME }).orderBy('created_at').first();
  const key = existing ? await rotateApiKey(db, String(existing.id)) : (await createApiClient(db, ids, DEMO_CLIENT_NAME)).key;
  mkdirSync(dirname(DEMO_KEY_FILE), { recursive: true });
  writeFileSync(DEMO_KEY_FILE, `${key}\n`, { mode: 0o600 });
  return key;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const withDemo = !process.argv.includes('--no-demo');
  const database = databaseName(config.mysqlUrl);

  const server = createDb(config, { withDatabase: false });
  try {
    await server.raw('CREATE DATABASE IF NOT EXISTS ?? CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci', [database]);
  } finally {
    await server.destroy();
  }

  const db = createDb(config);
  try {
    const ran = await migrateLatest(db);
    console.log(ran.length ? `setup: migrated ${database}: ${ran.join(', ')}` : `setup: database ${database} is up to date`);
    if (withDemo) {
      const seeded = await seedDemoData(db);
      const key = await ensureDemoClient(db, new IdGenerator(config.nodeId));
      console.log(`setup: demo data: ${seeded.merchants} merchants (ids 1001-1004, 1101-1104, 1201-1204), ${seeded.riders} riders`);
      console.log(`setup: demo client API key (also in .courier/demo-client.key):`);
      console.log(key);
    }
  } finally {
    await db.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(`setup: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
