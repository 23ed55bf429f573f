// Assembles the schema from every domain's types. Importing a module registers its types with the builder.
import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.ts';
import '../domain/users/users.schema.ts';
import '../auth/auth.schema.ts';
import '../domain/logs/logs.schema.ts';
import '../domain/images/images.schema.ts';
import '../domain/builds/builds.schema.ts';
import '../domain/jobs/jobs.schema.ts';

let schema: GraphQLSchema | undefined;

/** The schema, built once per process; types sorted so that the printed SDL is stable. */
export function getSchema(): GraphQLSchema {
  schema ??= lexicographicSortSchema(builder.toSchema());
  return schema;
}
