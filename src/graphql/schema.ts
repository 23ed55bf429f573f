// Assembles the schema from every domain's types. Importing a module registers its types with the builder.
import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.ts';
import './schema/users.ts';
import './schema/auth.ts';
import './schema/logs.ts';
import './schema/images.ts';
import './schema/builds.ts';
import './schema/jobs.ts';

let schema: GraphQLSchema | undefined;

/** The schema, built once per process; types sorted so that the printed SDL is stable. */
export function getSchema(): GraphQLSchema {
  schema ??= lexicographicSortSchema(builder.toSchema());
  return schema;
}
