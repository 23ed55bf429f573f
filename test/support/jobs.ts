// Helpers for pipeline and job tests.
import { expect } from 'vitest';
import {
  AddJobDocument,
  CreatePipelineDocument,
  JobDocument,
  JobLogDocument,
  PipelineDocument,
  type AddJobInput,
  type JobFieldsFragment,
} from '../generated/graphql.ts';
import type { GraphqlClient } from './graphql-client.ts';
import { multipartRequest, type FilePart } from './multipart.ts';

export const FINISHED_JOB = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT', 'SKIPPED'];

export async function createPipeline(client: GraphqlClient, name: string, continueOnFailure = false): Promise<string> {
  const result = await client.request(CreatePipelineDocument, { name, continueOnFailure });
  expect(result.errors).toBeUndefined();
  return result.data!.createPipeline.id;
}

export async function addJob(client: GraphqlClient, input: AddJobInput, files: FilePart[] = []): Promise<JobFieldsFragment> {
  const result = files.length > 0 ? await multipartRequest(client, AddJobDocument, { input }, files) : await client.request(AddJobDocument, { input });
  expect(result.errors).toBeUndefined();
  return result.data!.addJob;
}

export async function waitForJob(client: GraphqlClient, id: string, states = FINISHED_JOB, timeoutMs = 60_000): Promise<JobFieldsFragment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await client.request(JobDocument, { id })).data!.job;
    if (states.includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} is still ${job.state}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function waitForPipeline(client: GraphqlClient, id: string, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pipeline = (await client.request(PipelineDocument, { id })).data!.pipeline;
    if (pipeline.state !== 'RUNNING') return pipeline;
    if (Date.now() > deadline) throw new Error(`pipeline ${id} is still RUNNING`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The whole stored log, page by page. */
export async function jobLog(client: GraphqlClient, id: string): Promise<{ seq: number; stream: string; text: string }[]> {
  const lines: { seq: number; stream: string; text: string }[] = [];
  for (;;) {
    const page = (await client.request(JobLogDocument, { id, afterSeq: lines.at(-1)?.seq ?? 0, first: 5000 })).data!.job.logLines;
    if (page.length === 0) return lines;
    lines.push(...page);
  }
}
