import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { User } from '../users/user.entity.ts';

export const PIPELINE_STATES = ['IDLE', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED'] as const;
export type PipelineState = (typeof PIPELINE_STATES)[number];

/** An ordered list of jobs, run one after another (first in, first out) when submitted. */
export const Pipeline = defineEntity({
  name: 'Pipeline',
  tableName: 'pipelines',
  properties: {
    id: p.integer().primary().autoincrement(),
    owner: () => p.manyToOne(User).deleteRule('cascade'),
    name: p.string().length(200),
    /** When false (the default) a job that does not succeed ends the run: the jobs after it are SKIPPED. */
    continueOnFailure: p.boolean(),
    state: p.string().length(16).$type<PipelineState>(),
    cancelRequestedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    submittedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
  },
});
export type Pipeline = InferEntity<typeof Pipeline>;
