// The Pothos schema builder shared by every domain's types. Fields are non-null unless they say
// otherwise; `t.withAuth({ user: true })` marks what needs a logged-in user, and types its context so.
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import RelayPlugin from '@pothos/plugin-relay';
import { GraphQLError, Kind } from 'graphql';
import type { RequestContext } from '../http/context.ts';
import type { Viewer } from '../auth/viewer.ts';
import type { FileUpload } from 'graphql-upload-minimal';
import { DomainError } from '../domain/errors.ts';

export const builder = new SchemaBuilder<{
  Context: RequestContext;
  AuthScopes: { user: boolean };
  // `t.withAuth({ user: true })` fields see the viewer as present: no `viewer!` in resolvers.
  AuthContexts: { user: RequestContext & { viewer: Viewer } };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    Upload: { Input: Promise<FileUpload>; Output: never };
  };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin],
  relay: {},
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (context) => ({ user: context.viewer !== null }),
    // A credential that was presented but refused says why (expired, revoked…); none at all is UNAUTHENTICATED.
    unauthorizedError: (_parent, context) => context.authError ?? new DomainError('UNAUTHENTICATED'),
  },
});

builder.scalarType('DateTime', {
  description: 'A point in time, as an ISO 8601 string in UTC.',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value).toISOString()),
  parseValue: (value) => parseDate(value),
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string');
    return parseDate(ast.value);
  },
});

builder.scalarType('Upload', {
  description: 'A file sent with a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec).',
  serialize: () => {
    throw new GraphQLError('Upload is an input-only scalar');
  },
  // graphql-upload-minimal puts an Upload object where the file goes; its promise gives the file.
  parseValue: (value) => {
    const upload = value as { promise?: Promise<FileUpload> } | null;
    if (!upload?.promise) throw new DomainError('INVALID_INPUT', 'Send files as a GraphQL multipart request.');
    return upload.promise;
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

function parseDate(value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO 8601 string');
  return date;
}
