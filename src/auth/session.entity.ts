import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../domain/users/user.entity.ts';

/** A login session. The client holds `<id>.<secret>` in a cookie; only the secret's hash is stored. */
export const Session = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.string().length(32).primary(),
    user: () => p.manyToOne(User).deleteRule('cascade'),
    secretHash: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
  },
});
export type Session = InferEntity<typeof Session>;
