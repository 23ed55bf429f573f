import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../users/user.entity.ts';
import { Image } from '../images/image.entity.ts';
import { Pipeline } from '../pipelines/pipeline.entity.ts';

export const JOB_STATES = ['READY', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT', 'SKIPPED'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINISHED_JOB_STATES: readonly JobState[] = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT', 'SKIPPED'];

export interface Attachment {
  name: string;
  size: number;
  sha256: string;
}

export interface JobResult {
  /** Relative to /outbox, with `/` separators. */
  path: string;
  size: number;
  sha256: string;
}

/** One command run in one image, in a pipeline. */
export const Job = defineEntity({
  name: 'Job',
  tableName: 'jobs',
  properties: {
    id: p.integer().primary().autoincrement(),
    pipeline: () => p.manyToOne(Pipeline).deleteRule('cascade'),
    owner: () => p.manyToOne(User).deleteRule('cascade'),
    /** An image cannot be deleted while a job uses it. */
    image: () => p.manyToOne(Image).deleteRule('restrict'),
    /** Order in the pipeline, from 0. */
    position: p.integer(),
    /** The argv the container runs. */
    command: p.json<string[]>().$type<string[]>(),
    env: p.json<Record<string, string>>().$type<Record<string, string>>(),
    attachments: p.json<Attachment[]>().$type<Attachment[]>(),
    timeoutSeconds: p.integer(),
    cpus: p.double(),
    memoryBytes: p.bigint('number'),
    state: p.string().length(16).$type<JobState>(),
    exitCode: p.integer().nullable(),
    /** Why a job did not succeed, when the exit code alone does not say. */
    error: p.text().nullable(),
    results: p.json<JobResult[]>().$type<JobResult[]>(),
    logTruncated: p.boolean(),
    cpuSeconds: p.double().nullable(),
    peakMemoryBytes: p.bigint('number').nullable(),
    bytesRead: p.bigint('number').nullable(),
    bytesWritten: p.bigint('number').nullable(),
    containerId: p.string().length(80).nullable(),
    /** Under DATA_DIR: attachments (inbox/) and results (outbox/). */
    workDir: p.string().length(255),
    /** The instance whose disk holds the attachments (the job must run there); null: any instance. */
    affinity: p.string().length(128).nullable(),
    cancelRequestedAt: p.datetime().nullable(),
    /** When the scheduler was given this job of the current run (one job of a pipeline at a time). */
    dispatchedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    queuedAt: p.datetime().nullable(),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
  },
});
export type Job = InferEntity<typeof Job>;
