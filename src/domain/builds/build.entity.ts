import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../users/user.entity.ts';
import { Image } from '../images/image.entity.ts';

export const BUILD_STATES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'] as const;
export type BuildState = (typeof BUILD_STATES)[number];
export const FINISHED_BUILD_STATES: readonly BuildState[] = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'];

export const BUILD_PHASES = ['FETCHING', 'BUILDING', 'PUSHING'] as const;
export type BuildPhase = (typeof BUILD_PHASES)[number];

/** Where a build's context comes from. Secrets never go in here (it is shown to the owner). */
export type BuildSource =
  | { kind: 'DOCKERFILE'; files: string[] }
  | { kind: 'TARBALL'; filename: string }
  | { kind: 'TARBALL_URL'; url: string }
  | { kind: 'GIT'; url: string; ref: string; contextPath: string; dockerfilePath: string }
  | { kind: 'MERCURIAL'; url: string; ref: string; contextPath: string; dockerfilePath: string };

export interface BuildOptions {
  noCache: boolean;
  buildArgs: Record<string, string>;
  target: string | null;
  labels: Record<string, string>;
  /** Tags asked for (the version tag is added when the build runs). */
  tags: string[];
  timeoutSeconds: number;
}

export interface BuildPush {
  registry: string;
  /** Repository in the registry; null: the image's own (`<namespace>/<login>/<name>`). */
  repository?: string | null;
  insecure: boolean;
  username: string | null;
}

export const Build = defineEntity({
  name: 'Build',
  tableName: 'builds',
  properties: {
    id: p.integer().primary().autoincrement(),
    image: () => p.manyToOne(Image).deleteRule('cascade'),
    owner: () => p.manyToOne(User).deleteRule('cascade'),
    state: p.string().length(16).$type<BuildState>(),
    phase: p.string().length(16).$type<BuildPhase>().nullable(),
    source: p.json<BuildSource>().$type<BuildSource>(),
    options: p.json<BuildOptions>().$type<BuildOptions>(),
    push: p.json<BuildPush>().$type<BuildPush>().nullable(),
    /** Registry password given with this build, sealed; erased when the build ends. */
    pushSecret: p.text().nullable(),
    /** Under DATA_DIR: uploads and the prepared context; removed when the build ends. */
    workDir: p.string().length(255),
    error: p.text().nullable(),
    stepCurrent: p.integer().nullable(),
    stepTotal: p.integer().nullable(),
    dockerImageId: p.string().length(80).nullable(),
    /** The tag added to every build: the commit id for repositories, else a UTC timestamp. */
    versionTag: p.string().length(128).nullable(),
    commit: p.string().length(64).nullable(),
    /** The Dockerfile text, for DOCKERFILE sources. */
    dockerfile: p.text().nullable(),
    cancelRequestedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
  },
});
export type Build = InferEntity<typeof Build>;
