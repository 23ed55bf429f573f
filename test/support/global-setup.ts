// Once per run: an empty `test` database with every migration applied, so that test files can start
// servers in parallel without racing to migrate.
import { Client } from 'pg';
import { openDatabase } from '../../src/db/orm.ts';
import { TEST_DATABASE_URL } from './env.ts';

export default async function setup(): Promise<void> {
  const client = new Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  await client.query('drop schema if exists public cascade; create schema public;');
  await client.end();
  const orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: '/nonexistent' });
  await orm.close();
}
