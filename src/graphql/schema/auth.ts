// GraphQL for credentials: login/logout (session cookie), API tokens, and the account's security events.
import { builder } from '../builder.ts';
import { UserRef } from './users.ts';
import type { User } from '../../domain/users/user.entity.ts';
import type { AccountEvent } from '../../events/topics.ts';
import { clearedSessionCookie, sessionCookie } from '../../auth/cookies.ts';
import type { ApiToken } from '../../auth/api-token.entity.ts';
import { DomainError } from '../../domain/errors.ts';

const ApiTokenRef = builder.objectRef<ApiToken>('ApiToken').implement({
  description: 'A named credential for scripts and old clients: `Authorization: Bearer <token>`. The secret is shown once, at creation.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

const CreateApiTokenPayload = builder
  .objectRef<{ apiToken: ApiToken; token: string }>('CreateApiTokenPayload')
  .implement({
    fields: (t) => ({
      apiToken: t.expose('apiToken', { type: ApiTokenRef }),
      token: t.exposeString('token', { description: 'The secret. It cannot be read again.' }),
    }),
  });

const LoginPayload = builder.objectRef<{ user: User; expiresAt: Date }>('LoginPayload').implement({
  fields: (t) => ({
    user: t.expose('user', { type: UserRef }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

const AccountEventKindEnum = builder.enumType('AccountEventKind', {
  values: ['SESSION_STARTED', 'SESSION_ENDED', 'API_TOKEN_CREATED', 'API_TOKEN_REVOKED'] as const,
});

const AccountEventRef = builder.objectRef<AccountEvent>('AccountEvent').implement({
  description: 'A security-relevant change to the logged-in account.',
  fields: (t) => ({
    kind: t.expose('kind', { type: AccountEventKindEnum }),
    subjectId: t.exposeID('subjectId', { description: 'The session or API token the event is about.' }),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

builder.queryField('apiTokens', (t) =>
  t.withAuth({ user: true }).field({
    type: [ApiTokenRef],
    args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
    resolve: (_root, args, { viewer, services }) => services.auth.listApiTokens(viewer.user.id, args.includeRevoked ?? false),
  }),
);

builder.mutationFields((t) => ({
  login: t.field({
    type: LoginPayload,
    description: 'Opens a session and sets it as an HttpOnly cookie (over HTTP only). Attempts are rate limited per login and per client address (TOO_MANY_REQUESTS).',
    args: {
      login: t.arg.string({ required: true }),
      password: t.arg.string({ required: true }),
    },
    resolve: async (_root, args, context) => {
      // A session lives in a cookie, and a WebSocket cannot set one: there it would be a session nobody holds.
      if (!context.responseCookies) throw new DomainError('INVALID_INPUT', 'Log in over HTTP; over WebSocket, use a session cookie or an API token.');
      const { user, token, expiresAt } = await context.services.auth.login(args.login, args.password, context.clientAddress);
      context.responseCookies.push(sessionCookie(token, expiresAt, context.secureCookies));
      return { user, expiresAt };
    },
  }),
  logout: t.withAuth({ user: true }).boolean({
    description: 'Ends the current session and clears its cookie.',
    resolve: async (_root, _args, context) => {
      await context.services.auth.logout(context.viewer);
      context.responseCookies?.push(clearedSessionCookie(context.secureCookies));
      return true;
    },
  }),
  createApiToken: t.withAuth({ user: true }).field({
    type: CreateApiTokenPayload,
    args: {
      name: t.arg.string({ required: true }),
      expiresInDays: t.arg.int({ description: 'Leave out for a token that does not expire.' }),
    },
    resolve: (_root, args, { viewer, services }) =>
      services.auth.createApiToken(viewer.user.id, args.name, args.expiresInDays ?? null),
  }),
  revokeApiToken: t.withAuth({ user: true }).field({
    type: ApiTokenRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.auth.revokeApiToken(viewer.user.id, String(args.id)),
  }),
}));

builder.subscriptionField('accountEvents', (t) =>
  t.withAuth({ user: true }).field({
    type: AccountEventRef,
    description: 'Sessions and API tokens of the logged-in account as they start, end, appear and are revoked, from any instance.',
    subscribe: (_root, _args, { viewer, services }) => services.bus.subscribe('account', String(viewer.user.id)),
    resolve: (event) => event,
  }),
);
