// Once per run: a fresh database with every migration applied, on the PostgreSQL server that
// TEST_DATABASE_URL names, so that runs (CI, a developer, a second checkout) never share state.
// Test files start servers in parallel on it without racing to migrate. Dropped at the end.
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { openDatabase } from '../../src/db/orm.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = `dockyard_test_${Date.now().toString(36)}_${process.pid}`;
  await admin(`create database "${name}"`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const orm = await openDatabase({ databaseUrl: url.href, dataDir: '/nonexistent' });
  await orm.close();
  project.provide('databaseUrl', url.href);
  return () => admin(`drop database if exists "${name}" with (force)`);
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
