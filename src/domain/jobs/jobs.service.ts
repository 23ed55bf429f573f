// Jobs of a pipeline: add (with attachments), remove, reorder, read, follow, cancel, and their results.
// Every read is scoped to the owner: another user's job reads exactly like a missing one.
import { mkdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { LockMode } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import { followChanges } from '../../events/follow.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { JobSettings } from '../../config.ts';
import type { User } from '../users/user.entity.ts';
import { DomainError } from '../errors.ts';
import { Image } from '../images/image.entity.ts';
import type { LogsService } from '../logs/logs.service.ts';
import { LogLine } from '../logs/log-line.entity.ts';
import { saveUpload, type IncomingFile } from '../uploads.ts';
import { Pipeline } from '../pipelines/pipeline.entity.ts';
import { assertNotRunning, type PipelinesService } from '../pipelines/pipelines.service.ts';
import { checkAttachmentName, checkCommand, checkEnv } from './command.ts';
import { JobRows } from './job-rows.ts';
import { requestJobCancel } from './job-cancel.ts';
import { FINISHED_JOB_STATES, Job, type Attachment, type JobResult, type JobState } from './job.entity.ts';

export interface AddJobInput {
  imageId: number;
  /** The argv; or `commandLine`, split like a shell would. */
  command?: string[] | null;
  commandLine?: string | null;
  env?: { key: string; value: string }[] | null;
  attachments?: IncomingFile[] | null;
  timeoutSeconds?: number | null;
  cpus?: number | null;
  memoryMb?: number | null;
}

export interface JobsDeps {
  /** This instance: jobs with attachments (on its disk) run here. */
  instanceId: string;
  orm: Orm;
  bus: EventBus;
  logs: LogsService;
  pipelines: PipelinesService;
  settings: JobSettings;
  uploadMaxBytes: number;
  dataDir: string;
}

export class JobsService {
  readonly #deps: JobsDeps;
  readonly #rows: JobRows;

  constructor(deps: JobsDeps) {
    this.#deps = deps;
    this.#rows = new JobRows(deps.orm);
  }

  /** Adds a job at the end of the pipeline. Its attachments are streamed to disk; all input is checked first. */
  async add(user: User, pipelineId: number, input: AddJobInput): Promise<Job> {
    const { settings } = this.#deps;
    const em = this.#deps.orm.em.fork();
    const pipeline = await this.#pipeline(user, pipelineId);
    assertNotRunning(pipeline);
    const image = Number.isSafeInteger(input.imageId) ? await em.findOne(Image, { id: input.imageId, owner: user.id }) : null;
    if (!image) throw new DomainError('NOT_FOUND', 'No such image.', 'imageId');
    if (!image.dockerImageId) throw new DomainError('INVALID_INPUT', 'The image has not been built yet.', 'imageId');
    const command = checkCommand(input.command, input.commandLine);
    const env = checkEnv(input.env ?? []);
    const files = input.attachments ?? [];
    if (files.length > settings.maxAttachments) throw new DomainError('INVALID_INPUT', `At most ${settings.maxAttachments} attachments.`, 'attachments');
    if (files.length > 0 && settings.concurrency === 0) {
      // Attachments stay on the disk of the instance that received them, and this one runs no jobs.
      throw new DomainError('INVALID_INPUT', 'This instance runs no jobs (JOB_CONCURRENCY=0), so it cannot take attachments; send them to an instance that runs jobs.', 'attachments');
    }
    const timeoutSeconds = within(input.timeoutSeconds, 1, settings.timeoutSeconds, 'timeoutSeconds');
    const cpus = within(input.cpus, 0.01, settings.cpus, 'cpus');
    const memoryBytes = within(input.memoryMb, 8, settings.memoryBytes / 2 ** 20, 'memoryMb') * 2 ** 20;

    const workDir = path.join('jobs', `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const inbox = path.join(this.#deps.dataDir, workDir, 'inbox'); // inboxDir(job) once the job exists
    await mkdir(inbox, { recursive: true });
    try {
      const attachments: Attachment[] = [];
      // One after another, as they arrive; each name is checked before its file is written.
      for (const incoming of files) {
        const file = await incoming.receive();
        const name = checkAttachmentName(file.name);
        if (attachments.some((a) => a.name === name)) throw new DomainError('INVALID_INPUT', `Two attachments are named "${name}".`, 'attachments');
        const { size, sha256 } = await saveUpload(file, path.join(inbox, name), this.#deps.uploadMaxBytes, 'attachments');
        attachments.push({ name, size, sha256 });
      }
      const job = await em.transactional(async (tx) => {
        // Locked, so that two jobs added at once get different positions and a submit waits for them.
        const locked = await tx.findOneOrFail(Pipeline, { id: pipeline.id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
        assertNotRunning(locked);
        const last = await tx.findOne(Job, { pipeline: pipeline.id }, { orderBy: { position: 'desc' } });
        const created = tx.create(Job, {
          pipeline: pipeline.id, owner: user.id, image: image.id, position: (last?.position ?? -1) + 1, command, env, attachments,
          timeoutSeconds, cpus, memoryBytes, state: 'READY', results: [], logTruncated: false, workDir,
          affinity: attachments.length > 0 ? this.#deps.instanceId : null,
        });
        await tx.flush();
        return created;
      });
      return this.get(user, job.id);
    } catch (error) {
      await rm(path.join(this.#deps.dataDir, workDir), { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Changes a job in place (not while its pipeline runs): its image, command, environment; new
   * attachments are added, replacing any of the same name. Only what is given changes.
   */
  async update(user: User, id: number, input: Omit<Partial<AddJobInput>, 'imageId'> & { imageId?: number | null }): Promise<Job> {
    const { settings } = this.#deps;
    const job = await this.get(user, id, ['pipeline']);
    assertNotRunning(job.pipeline);
    const em = this.#deps.orm.em.fork();
    const changes: Partial<Job> = {};
    if (input.imageId != null) {
      const image = Number.isSafeInteger(input.imageId) ? await em.findOne(Image, { id: input.imageId, owner: user.id }) : null;
      if (!image) throw new DomainError('NOT_FOUND', 'No such image.', 'imageId');
      if (!image.dockerImageId) throw new DomainError('INVALID_INPUT', 'The image has not been built yet.', 'imageId');
      changes.image = image;
    }
    if (input.command != null || input.commandLine != null) changes.command = checkCommand(input.command, input.commandLine);
    if (input.env != null) changes.env = checkEnv(input.env);
    if (input.timeoutSeconds != null) changes.timeoutSeconds = within(input.timeoutSeconds, 1, settings.timeoutSeconds, 'timeoutSeconds');
    if (input.cpus != null) changes.cpus = within(input.cpus, 0.01, settings.cpus, 'cpus');
    if (input.memoryMb != null) changes.memoryBytes = within(input.memoryMb, 8, settings.memoryBytes / 2 ** 20, 'memoryMb') * 2 ** 20;
    const files = input.attachments ?? [];
    if (files.length > 0) {
      if (settings.concurrency === 0) throw new DomainError('INVALID_INPUT', 'This instance runs no jobs (JOB_CONCURRENCY=0), so it cannot take attachments.', 'attachments');
      if (job.affinity && job.affinity !== this.#deps.instanceId) throw new DomainError('INVALID_INPUT', 'Add attachments on the instance that holds the job\'s other attachments.', 'attachments');
      const attachments = [...job.attachments];
      const inbox = this.inboxDir(job);
      await mkdir(inbox, { recursive: true });
      for (const incoming of files) {
        const file = await incoming.receive();
        const name = checkAttachmentName(file.name);
        const index = attachments.findIndex((a) => a.name === name);
        if (index < 0 && attachments.length >= settings.maxAttachments) throw new DomainError('INVALID_INPUT', `At most ${settings.maxAttachments} attachments.`, 'attachments');
        // Written aside, then moved over the old one: a failed upload leaves the old file as it was.
        const partial = path.join(inbox, `.${name}.${randomBytes(4).toString('hex')}.partial`);
        try {
          const { size, sha256 } = await saveUpload(file, partial, this.#deps.uploadMaxBytes, 'attachments');
          await rename(partial, path.join(inbox, name));
          attachments.splice(index < 0 ? attachments.length : index, index < 0 ? 0 : 1, { name, size, sha256 });
        } finally {
          await rm(partial, { force: true });
        }
      }
      changes.attachments = attachments;
      changes.affinity = this.#deps.instanceId;
    }
    await em.transactional(async (tx) => {
      assertNotRunning(await tx.findOneOrFail(Pipeline, { id: job.pipeline.id }, { lockMode: LockMode.PESSIMISTIC_WRITE }));
      await tx.nativeUpdate(Job, { id }, changes);
    });
    return this.get(user, id);
  }

  /** Removes a job (not while its pipeline runs); the jobs after it move up. */
  async remove(user: User, id: number): Promise<Job> {
    const job = await this.get(user, id);
    await this.#deps.orm.em.fork().transactional(async (tx) => {
      assertNotRunning(await tx.findOneOrFail(Pipeline, { id: job.pipeline.id }, { lockMode: LockMode.PESSIMISTIC_WRITE }));
      await tx.nativeDelete(LogLine, { source: 'job', sourceId: id });
      await tx.nativeDelete(Job, { id });
      await tx.execute('update jobs set position = position - 1 where pipeline_id = ? and position > ?', [job.pipeline.id, job.position], 'run');
    });
    await rm(path.join(this.#deps.dataDir, job.workDir), { recursive: true, force: true });
    return job;
  }

  /** Moves a job to `position` (0 is first) among its pipeline's jobs; the others keep their order. */
  async move(user: User, id: number, position: number): Promise<Job[]> {
    const job = await this.get(user, id);
    await this.#deps.orm.em.fork().transactional(async (tx) => {
      assertNotRunning(await tx.findOneOrFail(Pipeline, { id: job.pipeline.id }, { lockMode: LockMode.PESSIMISTIC_WRITE }));
      const jobs = await tx.find(Job, { pipeline: job.pipeline.id }, { orderBy: { position: 'asc' } });
      if (!Number.isInteger(position) || position < 0 || position >= jobs.length) {
        throw new DomainError('INVALID_INPUT', `position must be between 0 and ${jobs.length - 1}.`, 'position');
      }
      const order = jobs.filter((j) => j.id !== id);
      order.splice(position, 0, jobs.find((j) => j.id === id)!);
      order.forEach((j, i) => (j.position = i));
    });
    return this.#deps.pipelines.jobs(user, job.pipeline.id);
  }

  /**
   * The user's job. Its image and pipeline are references (their ids) unless `populate` names them:
   * GraphQL resolves them through their own services only when a query asks, so reading them here would
   * be wasted on most requests.
   */
  async get(user: User, id: number, populate: readonly ('image' | 'pipeline')[] = []): Promise<Job> {
    if (!Number.isSafeInteger(id)) throw new DomainError('NOT_FOUND', 'No such job.');
    const em = this.#deps.orm.em.fork();
    let job: Job | null;
    if (populate.length > 0) {
      job = await em.findOne(Job, { id, owner: user.id }, { populate });
    } else {
      // The hot path (the `job` query, every follow and check). em.findOne plans its query anew on each
      // call, which costs more CPU than the read itself; the row from a batched read (see JobRows) and
      // em.map give the same entity. Another user's job reads as missing.
      const row = await this.#rows.read(id);
      // A copy: reads of the same job in one batch share the row.
      job = row && Number(row['owner_id']) === user.id ? em.map(Job, { ...row }) : null;
    }
    if (!job) throw new DomainError('NOT_FOUND', 'No such job.');
    return job;
  }

  /** Cancels a waiting job at once, or asks the instance running it to stop it (SIGTERM, grace, SIGKILL). */
  async cancel(user: User, id: number): Promise<Job> {
    const job = await this.get(user, id);
    const em = this.#deps.orm.em.fork();
    const now = new Date();
    if (job.state === 'QUEUED' && (await em.nativeUpdate(Job, { id, state: 'QUEUED' }, { state: 'CANCELED', finishedAt: now, cancelRequestedAt: now })) === 1) {
      this.publish(job, 'CANCELED');
      await this.#deps.pipelines.advance(job.pipeline.id);
    } else {
      await requestJobCancel(em, this.#deps.bus, id, now);
    }
    return this.get(user, id);
  }

  async readLogs(user: User, id: number, afterSeq: number, limit: number): Promise<LogLine[]> {
    await this.get(user, id);
    return this.#deps.logs.read('job', id, afterSeq, Math.min(Math.max(limit, 1), 5000));
  }

  /** Stored lines after `afterSeq`, then live ones, in chunks of consecutive lines, until the job has ended and every line was given. */
  async followLogs(user: User, id: number, afterSeq: number): Promise<AsyncGenerator<LogLine[]>> {
    await this.get(user, id);
    return this.#deps.logs.follow('job', id, afterSeq, async () => {
      // The batched row read of `get` (the log's shared reader asks this whenever it finds nothing new).
      const row = await this.#rows.read(id);
      // A job not yet submitted (READY) will write once it runs: keep following.
      return !row || FINISHED_JOB_STATES.includes(row['state'] as JobState);
    });
  }

  /** The job now, then after every change, until it has ended. */
  async followUpdates(user: User, id: number): Promise<AsyncGenerator<Job>> {
    await this.get(user, id);
    return followChanges(
      this.#deps.bus,
      'jobUpdated',
      String(id),
      async (event) => {
        const job = await this.get(user, id);
        if (event && event.state !== job.state) job.state = event.state as JobState;
        return job;
      },
      (job) => FINISHED_JOB_STATES.includes(job.state),
    );
  }

  /** The pipeline's jobs now, then after every change in the run, until the run has ended. */
  async followPipeline(user: User, pipelineId: number): Promise<AsyncGenerator<Pipeline>> {
    await this.#pipeline(user, pipelineId);
    return followChanges(this.#deps.bus, 'pipelineUpdated', String(pipelineId), () => this.#pipeline(user, pipelineId), (p) => p.state !== 'RUNNING' && p.state !== 'IDLE');
  }

  /** Where a result file of a finished job is on disk; NOT_FOUND for anything not in its results. */
  async resultFile(user: User, id: number, resultPath: string): Promise<{ job: Job; result: JobResult; file: string }> {
    const job = await this.get(user, id);
    const result = job.results.find((r) => r.path === resultPath);
    if (!result) throw new DomainError('NOT_FOUND', 'No such result file.');
    return { job, result, file: path.join(this.outboxDir(job), ...result.path.split('/')) };
  }

  inboxDir(job: Job): string {
    return path.join(this.#deps.dataDir, job.workDir, 'inbox');
  }

  outboxDir(job: Job): string {
    return path.join(this.#deps.dataDir, job.workDir, 'outbox');
  }

  publish(job: Job, state: JobState): void {
    const event = { jobId: String(job.id), pipelineId: String(job.pipeline.id), state };
    this.#deps.bus.publish('jobUpdated', String(job.id), event);
    this.#deps.bus.publish('pipelineUpdated', String(job.pipeline.id), event);
  }

  async #pipeline(user: User, id: number): Promise<Pipeline> {
    return this.#deps.pipelines.get(user, id);
  }
}

function within(value: number | null | undefined, min: number, max: number, field: string): number {
  if (value == null) return max;
  if (!Number.isFinite(value) || value < min || value > max) throw new DomainError('INVALID_INPUT', `${field} must be between ${min} and ${max}.`, field);
  return value;
}
