// GraphQL for pipelines and their jobs: editing, submitting, cancelling, results, and following runs live.
import { resolveOffsetConnection } from '@pothos/plugin-relay';
import { builder } from '../builder.ts';
import { parseId } from '../ids.ts';
import { incomingFile } from '../uploads.ts';
import { KeyValueInput, KeyValueRef, keyValues } from '../key-value.ts';
import { ImageRef } from './images.ts';
import { eachLine, LogChunkRef, LogLineRef } from './logs.ts';
import { PIPELINE_STATES, type Pipeline } from '../../domain/pipelines/pipeline.entity.ts';
import { JOB_STATES, type Attachment, type Job, type JobResult } from '../../domain/jobs/job.entity.ts';

const PipelineStateEnum = builder.enumType('PipelineState', {
  values: PIPELINE_STATES,
  description: 'IDLE: never submitted. RUNNING: submitted, jobs waiting or running. Then how the last run ended.',
});
const JobStateEnum = builder.enumType('JobState', { values: JOB_STATES });

const FileInfoRef = builder.objectRef<Attachment | JobResult>('FileInfo').implement({
  fields: (t) => ({
    name: t.string({ description: 'The path (relative to /inbox or /outbox).', resolve: (f) => ('name' in f ? f.name : f.path) }),
    size: t.float({ resolve: (f) => f.size }),
    sha256: t.exposeString('sha256'),
  }),
});

const ResourcesRef = builder.objectRef<Job>('JobResources').implement({
  description: 'Sampled from the engine while the job ran.',
  fields: (t) => ({
    cpuSeconds: t.float({ resolve: (j) => Number(j.cpuSeconds ?? 0) }),
    peakMemoryBytes: t.float({ resolve: (j) => Number(j.peakMemoryBytes ?? 0) }),
    bytesRead: t.float({ resolve: (j) => Number(j.bytesRead ?? 0) }),
    bytesWritten: t.float({ resolve: (j) => Number(j.bytesWritten ?? 0) }),
  }),
});

export const PipelineRef = builder.objectRef<Pipeline>('Pipeline');

export const JobRef = builder.objectRef<Job>('Job').implement({
  description: 'One command run in one of your images. Attachments are read-only under /inbox; what it writes under /outbox is kept.',
  fields: (t) => ({
    id: t.exposeID('id'),
    pipeline: t.withAuth({ user: true }).field({ type: PipelineRef, resolve: (job, _args, { viewer, services }) => services.pipelines.get(viewer.user, job.pipeline.id) }),
    position: t.exposeInt('position'),
    image: t.withAuth({ user: true }).field({ type: ImageRef, resolve: (job, _args, { viewer, services }) => services.images.get(viewer.user, job.image.id) }),
    command: t.exposeStringList('command'),
    env: t.field({ type: [KeyValueRef], resolve: (job) => keyValues(job.env) }),
    attachments: t.field({ type: [FileInfoRef], resolve: (job) => job.attachments }),
    timeoutSeconds: t.exposeInt('timeoutSeconds'),
    cpus: t.float({ resolve: (job) => Number(job.cpus) }),
    memoryBytes: t.float({ resolve: (job) => Number(job.memoryBytes) }),
    state: t.expose('state', { type: JobStateEnum }),
    exitCode: t.exposeInt('exitCode', { nullable: true }),
    error: t.exposeString('error', { nullable: true, description: 'Why the job did not succeed, when the exit code alone does not say.' }),
    resources: t.field({ type: ResourcesRef, nullable: true, resolve: (job) => (job.cpuSeconds == null ? null : job) }),
    results: t.field({ type: [FileInfoRef], description: 'What the job left in /outbox.', resolve: (job) => job.results }),
    resultsUrl: t.string({
      nullable: true,
      description: 'Download of all results as one zip (send the session cookie or an API token).',
      resolve: (job) => (job.results.length > 0 ? `/jobs/${job.id}/results.zip` : null),
    }),
    logTruncated: t.exposeBoolean('logTruncated'),
    logLines: t.withAuth({ user: true }).field({
      type: [LogLineRef],
      args: { afterSeq: t.arg.int({ defaultValue: 0 }), first: t.arg.int({ defaultValue: 1000 }) },
      resolve: (job, args, { viewer, services }) => services.jobs.readLogs(viewer.user, job.id, args.afterSeq ?? 0, args.first ?? 1000),
    }),
    cancelRequested: t.boolean({ resolve: (job) => job.cancelRequestedAt != null }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    queuedAt: t.expose('queuedAt', { type: 'DateTime', nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

PipelineRef.implement({
  description: 'Jobs in order. Submitting runs them one after another; a job that does not succeed stops the rest unless continueOnFailure.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    continueOnFailure: t.exposeBoolean('continueOnFailure'),
    state: t.expose('state', { type: PipelineStateEnum }),
    jobs: t.withAuth({ user: true }).field({ type: [JobRef], resolve: (p, _args, { viewer, services }) => services.pipelines.jobs(viewer.user, p.id) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    submittedAt: t.expose('submittedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

const AddJobInput = builder.inputType('AddJobInput', {
  description: 'Give the command as `command` (argv) or `commandLine` (split like a shell would; it runs through a shell only if you write `sh -c`).',
  fields: (t) => ({
    pipelineId: t.id({ required: true }),
    imageId: t.id({ required: true, description: 'One of your images, built.' }),
    command: t.stringList(),
    commandLine: t.string(),
    env: t.field({ type: [KeyValueInput] }),
    attachments: t.field({ type: ['Upload'], description: 'Files that appear read-only as /inbox/<file name>.' }),
    timeoutSeconds: t.int(),
    cpus: t.float(),
    memoryMb: t.int(),
  }),
});

builder.queryFields((t) => ({
  pipelines: t.withAuth({ user: true }).connection({
    type: PipelineRef,
    description: 'Your pipelines, newest first.',
    args: { state: t.arg({ type: PipelineStateEnum }) },
    resolve: (_root, args, { viewer, services }) =>
      resolveOffsetConnection({ args }, ({ limit, offset }) => services.pipelines.list(viewer.user, args.state ?? null, limit, offset)),
  }),
  pipeline: t.withAuth({ user: true }).field({
    type: PipelineRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.pipelines.get(viewer.user, parseId(args.id)),
  }),
  job: t.withAuth({ user: true }).field({
    type: JobRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.jobs.get(viewer.user, parseId(args.id)),
  }),
}));

builder.mutationFields((t) => ({
  createPipeline: t.withAuth({ user: true }).field({
    type: PipelineRef,
    args: { name: t.arg.string({ required: true }), continueOnFailure: t.arg.boolean({ defaultValue: false }) },
    resolve: (_root, args, { viewer, services }) => services.pipelines.create(viewer.user, args.name, args.continueOnFailure ?? false),
  }),
  updatePipeline: t.withAuth({ user: true }).field({
    type: PipelineRef,
    description: 'Renames it, or changes continueOnFailure (not while it runs).',
    args: { id: t.arg.id({ required: true }), name: t.arg.string(), continueOnFailure: t.arg.boolean() },
    resolve: (_root, args, { viewer, services }) => services.pipelines.update(viewer.user, parseId(args.id), args),
  }),
  deletePipeline: t.withAuth({ user: true }).field({
    type: PipelineRef,
    description: 'Deletes it with its jobs, logs and results (not while it runs).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.pipelines.delete(viewer.user, parseId(args.id)),
  }),
  submitPipeline: t.withAuth({ user: true }).field({
    type: [JobRef],
    description: 'Runs the jobs in position order, from a clean slate (earlier results and logs are dropped).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.pipelines.submit(viewer.user, parseId(args.id)),
  }),
  cancelPipeline: t.withAuth({ user: true }).field({
    type: PipelineRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.pipelines.cancel(viewer.user, parseId(args.id)),
  }),
  addJob: t.withAuth({ user: true }).field({
    type: JobRef,
    description: 'Adds a job at the end of a pipeline that is not running.',
    args: { input: t.arg({ type: AddJobInput, required: true }) },
    resolve: (_root, { input }, { viewer, services }) =>
      services.jobs.add(viewer.user, parseId(input.pipelineId), {
        ...input,
        imageId: parseId(input.imageId),
        attachments: (input.attachments ?? []).map(incomingFile),
      }),
  }),
  updateJob: t.withAuth({ user: true }).field({
    type: JobRef,
    description: 'Changes a job in place (not while its pipeline runs): only what is given; new attachments replace any of the same name.',
    args: {
      id: t.arg.id({ required: true }),
      imageId: t.arg.id(),
      command: t.arg.stringList(),
      commandLine: t.arg.string(),
      env: t.arg({ type: [KeyValueInput] }),
      attachments: t.arg({ type: ['Upload'] }),
      timeoutSeconds: t.arg.int(),
      cpus: t.arg.float(),
      memoryMb: t.arg.int(),
    },
    resolve: (_root, { id, imageId, attachments, ...changes }, { viewer, services }) =>
      services.jobs.update(viewer.user, parseId(id), {
        ...changes,
        imageId: imageId == null ? null : parseId(imageId),
        attachments: (attachments ?? []).map(incomingFile),
      }),
  }),
  removeJob: t.withAuth({ user: true }).field({
    type: JobRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.jobs.remove(viewer.user, parseId(args.id)),
  }),
  moveJob: t.withAuth({ user: true }).field({
    type: [JobRef],
    description: "Moves a job to `position` (0 is first); returns the pipeline's jobs in their new order.",
    args: { id: t.arg.id({ required: true }), position: t.arg.int({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.jobs.move(viewer.user, parseId(args.id), args.position),
  }),
  cancelJob: t.withAuth({ user: true }).field({
    type: JobRef,
    description: 'A waiting job ends CANCELED at once; a running one gets SIGTERM, then SIGKILL after the grace period.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.jobs.cancel(viewer.user, parseId(args.id)),
  }),
}));

builder.subscriptionFields((t) => ({
  jobLogLines: t.withAuth({ user: true }).field({
    type: LogLineRef,
    description: "The job's output after `afterSeq` (stored lines first, then live), each line once, in order; completes when the job has ended.",
    args: { jobId: t.arg.id({ required: true }), afterSeq: t.arg.int({ defaultValue: 0 }) },
    subscribe: async (_root, args, { viewer, services }) => eachLine(await services.jobs.followLogs(viewer.user, parseId(args.jobId), args.afterSeq ?? 0)),
    resolve: (line) => line,
  }),
  jobLogChunks: t.withAuth({ user: true }).field({
    type: LogChunkRef,
    description: "Like jobLogLines, in chunks of consecutive lines: what a log viewer wants for a fast log (one message per chunk, not per line).",
    args: { jobId: t.arg.id({ required: true }), afterSeq: t.arg.int({ defaultValue: 0 }) },
    subscribe: (_root, args, { viewer, services }) => services.jobs.followLogs(viewer.user, parseId(args.jobId), args.afterSeq ?? 0),
    resolve: (chunk) => chunk,
  }),
  jobUpdated: t.withAuth({ user: true }).field({
    type: JobRef,
    description: 'The job now, then after every change of state; completes when it has ended.',
    args: { jobId: t.arg.id({ required: true }) },
    subscribe: (_root, args, { viewer, services }) => services.jobs.followUpdates(viewer.user, parseId(args.jobId)),
    resolve: (job) => job,
  }),
  pipelineUpdated: t.withAuth({ user: true }).field({
    type: PipelineRef,
    description: 'The pipeline now, then after every change of it or its jobs; completes when its run has ended.',
    args: { pipelineId: t.arg.id({ required: true }) },
    subscribe: (_root, args, { viewer, services }) => services.jobs.followPipeline(viewer.user, parseId(args.pipelineId)),
    resolve: (pipeline) => pipeline,
  }),
}));
