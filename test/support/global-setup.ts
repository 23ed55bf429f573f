// Once per run: a fresh database with every migration applied, on the PostgreSQL server that
// TEST_DATABASE_URL names, so that runs (CI, a developer, a second checkout) never share state.
// Test files start servers in parallel on it without racing to migrate. Dropped at the end, after the
// images the run built are removed from the engine (the engine is shared; runs must not pile up images).
import type { TestProject } from 'vitest/node';
import Docker from 'dockerode';
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
  return async () => {
    await removeBuiltImages(url.href).catch((error: unknown) => console.error('global teardown: could not remove the images of this run', error));
    await admin(`drop database if exists "${name}" with (force)`);
  };
}

/** Every engine image tagged in a repository of this run's images (all versions, pushed tags too), newest first. */
async function removeBuiltImages(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const repositories = await client.query<{ repository: string }>('select repository from images').finally(() => client.end());
  const prefixes = repositories.rows.map((row) => `${row.repository}:`);
  const docker = new Docker();
  const ours = (await docker.listImages())
    .filter((image) => (image.RepoTags ?? []).some((tag) => prefixes.some((prefix) => tag.startsWith(prefix) || tag.includes(`/${prefix}`))))
    .sort((a, b) => b.Created - a.Created);
  for (const image of ours) await docker.getImage(image.Id).remove({ force: true }).catch(() => {});
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
