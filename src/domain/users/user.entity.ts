import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.integer().primary().autoincrement(),
    /** Lower-case; unique. */
    login: p.string().length(40).unique(),
    /** Lower-case; unique. */
    email: p.string().length(254).unique(),
    passwordHash: p.text(),
    /** SHA-256 (hex) of the confirmation token's secret; kept after confirming so a repeated confirm succeeds. */
    confirmationHash: p.string().length(64),
    confirmationExpiresAt: p.datetime(),
    confirmedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type User = InferEntity<typeof User>;
