import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../users/user.entity.ts';

/** A user's login for one registry, used to push. The password is sealed and never shown again. */
export const RegistryCredential = defineEntity({
  name: 'RegistryCredential',
  tableName: 'registry_credentials',
  properties: {
    id: p.integer().primary().autoincrement(),
    owner: () => p.manyToOne(User).deleteRule('cascade'),
    registry: p.string().length(255),
    username: p.string().length(255),
    passwordSealed: p.text(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type RegistryCredential = InferEntity<typeof RegistryCredential>;
