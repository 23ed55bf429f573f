import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../users/user.entity.ts';

/** A named image of one user; each Build is an attempt to produce it. */
export const Image = defineEntity({
  name: 'Image',
  tableName: 'images',
  properties: {
    id: p.integer().primary().autoincrement(),
    owner: () => p.manyToOne(User).deleteRule('cascade'),
    /** Chosen by the user, unique per user: lower-case letters, digits, and . _ - between them. */
    name: p.string().length(128),
    /** Generated: `<namespace>/<login>/<name>`. No user can name another's repository. */
    repository: p.string().length(255).unique(),
    /** The Dockerfile of the last successful build, when it was given as text (Kabuto shows it). */
    dockerfile: p.text().nullable(),
    /** `sha256:…` of the last successful build; null until one succeeds. */
    dockerImageId: p.string().length(80).nullable(),
    sizeBytes: p.bigint('number').nullable(),
    tags: p.json<string[]>().$type<string[]>(),
    /** Registry repository and manifest digest of the last push. */
    pushedTo: p.string().length(512).nullable(),
    digest: p.string().length(80).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Image = InferEntity<typeof Image>;
