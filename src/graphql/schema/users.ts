// GraphQL for accounts: the User type, registering, confirming, and `me`.
import { builder } from '../builder.ts';
import type { User } from '../../domain/users/user.entity.ts';

export const UserRef = builder.objectRef<User>('User').implement({
  description: 'An account. Everything else in Dockyard is owned by one.',
  fields: (t) => ({
    id: t.exposeID('id'),
    login: t.exposeString('login'),
    email: t.exposeString('email'),
    confirmed: t.boolean({ resolve: (user) => user.confirmedAt != null }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const RegisterPayload = builder
  .objectRef<{ user: User; confirmationToken: string }>('RegisterPayload')
  .implement({
    fields: (t) => ({
      user: t.expose('user', { type: UserRef }),
      confirmationToken: t.exposeString('confirmationToken', {
        description: 'Pass it to confirmAccount. Shown only here.',
      }),
    }),
  });

builder.queryField('me', (t) =>
  t.withAuth({ user: true }).field({
    type: UserRef,
    description: 'The logged-in user.',
    resolve: (_root, _args, { viewer }) => viewer.user,
  }),
);

builder.mutationFields((t) => ({
  register: t.field({
    type: RegisterPayload,
    description: 'Creates an account. It must be confirmed with the returned token before it can log in (unless the operator allows it).',
    args: {
      login: t.arg.string({ required: true }),
      password: t.arg.string({ required: true }),
      email: t.arg.string({ required: true }),
    },
    resolve: (_root, args, { services }) => services.users.register(args),
  }),
  confirmAccount: t.field({
    type: UserRef,
    args: {
      login: t.arg.string({ required: true }),
      token: t.arg.string({ required: true }),
    },
    resolve: (_root, args, { services }) => services.users.confirm(args.login, args.token),
  }),
}));
