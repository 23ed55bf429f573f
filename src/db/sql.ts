// Raw SQL with real bind parameters ($1, $2, …) on the ORM's own connection pool, for the few hot
// statements (log lines) where the ORM's `execute` would inline every value into the SQL text: a batch
// of thousands of lines then costs a large string to build and a large statement to parse.
import { CompiledQuery } from 'kysely';
import type { Orm } from './orm.ts';

export async function query<Row>(orm: Orm, sql: string, parameters: readonly unknown[]): Promise<Row[]> {
  const result = await orm.em.getConnection().getClient().executeQuery<Row>(CompiledQuery.raw(sql, [...parameters]));
  return [...result.rows];
}

export async function run(orm: Orm, sql: string, parameters: readonly unknown[]): Promise<number> {
  const result = await orm.em.getConnection().getClient().executeQuery(CompiledQuery.raw(sql, [...parameters]));
  return Number(result.numAffectedRows ?? 0n);
}
