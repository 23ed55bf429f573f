import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../domain/users/user.entity.ts';

/** A named, revocable credential for scripts: `Authorization: Bearer dyt_<id>.<secret>`. */
export const ApiToken = defineEntity({
  name: 'ApiToken',
  tableName: 'api_tokens',
  properties: {
    id: p.string().length(32).primary(),
    user: () => p.manyToOne(User).deleteRule('cascade'),
    name: p.string().length(100),
    secretHash: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
  },
});
export type ApiToken = InferEntity<typeof ApiToken>;
