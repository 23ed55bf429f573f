// Opens the database (PostgreSQL when DATABASE_URL is set, embedded PGlite otherwise) and brings
// its schema up to date with the migrations in migrations/ before anything else touches it.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { MikroORM as PostgresOrm } from '@mikro-orm/postgresql';
import { MikroORM as PgliteOrm } from '@mikro-orm/pglite';
import { Migrator } from '@mikro-orm/migrations';
import type { MikroORM } from '@mikro-orm/core';
import type { AbstractSqlDriver, SqlEntityManager } from '@mikro-orm/sql';
import { entities } from './entities.ts';
import { migrations } from '../../migrations/index.ts';
import { redact } from '../config.ts';

export type Orm = MikroORM<AbstractSqlDriver, SqlEntityManager>;

export interface DatabaseOptions {
  /** postgres:// URL, or null for PGlite under `dataDir`. */
  databaseUrl: string | null;
  dataDir: string;
}

export async function openDatabase({ databaseUrl, dataDir }: DatabaseOptions): Promise<Orm> {
  const common = {
    entities,
    extensions: [Migrator],
    migrations: { migrationsList: migrations, snapshot: false, silent: true },
    ensureDatabase: false,
  };
  let orm: Orm;
  let where: string;
  if (databaseUrl) {
    where = redact(databaseUrl);
    orm = (await PostgresOrm.init({ ...common, clientUrl: databaseUrl, driverOptions: { connectionTimeoutMillis: 5000 } })) as unknown as Orm;
  } else {
    const dir = path.join(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
    where = dir;
    orm = (await PgliteOrm.init({ ...common, dbName: dir })) as unknown as Orm;
  }
  try {
    // The migrator would create a missing database; a mistyped name must fail instead.
    await orm.connect();
    const connection = await orm.checkConnection();
    if (!connection.ok) throw new Error(connection.reason);
    await orm.migrator.up();
  } catch (error) {
    await orm.close().catch(() => {});
    throw new Error(`cannot open the database at ${where}: ${(error as Error).message}`, { cause: error });
  }
  return orm;
}
