// Pipelines: create, rename, list, delete, submit, cancel, and moving a submitted run forward one job
// at a time. Every read is scoped to the owner: another user's pipeline reads exactly like a missing one.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { LockMode } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Orm } from '../../db/orm.ts';
import { query } from '../../db/sql.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { TaskQueue } from '../../scheduler/queue.ts';
import type { User } from '../users/user.entity.ts';
import { DomainError } from '../errors.ts';
import { LogLine } from '../logs/log-line.entity.ts';
import { Job, FINISHED_JOB_STATES, type JobState } from '../jobs/job.entity.ts';
import { requestJobCancel } from '../jobs/job-cancel.ts';
import { Pipeline, type PipelineState } from './pipeline.entity.ts';

export const JOB_TASK = 'job';
/** A job task whose handler failed (the database was away) is tried again; the handler is idempotent. */
const TASK_ATTEMPTS = 3;

export interface JobTaskPayload {
  jobId: number;
  dispatchedAt: string;
}

export interface PipelinesDeps {
  orm: Orm;
  bus: EventBus;
  queue: TaskQueue;
  dataDir: string;
}

export class PipelinesService {
  readonly #deps: PipelinesDeps;

  constructor(deps: PipelinesDeps) {
    this.#deps = deps;
  }

  async create(user: User, name: string, continueOnFailure: boolean): Promise<Pipeline> {
    const em = this.#deps.orm.em.fork();
    const pipeline = em.create(Pipeline, { owner: user.id, name: checkName(name), continueOnFailure, state: 'IDLE' });
    await em.flush();
    return pipeline;
  }

  async update(user: User, id: number, changes: { name?: string | null; continueOnFailure?: boolean | null }): Promise<Pipeline> {
    const em = this.#deps.orm.em.fork();
    const pipeline = await this.#owned(em, user, id);
    if (changes.name != null) pipeline.name = checkName(changes.name);
    if (changes.continueOnFailure != null) {
      assertNotRunning(pipeline);
      pipeline.continueOnFailure = changes.continueOnFailure;
    }
    await em.flush();
    return pipeline;
  }

  async get(user: User, id: number): Promise<Pipeline> {
    return this.#owned(this.#deps.orm.em.fork(), user, id);
  }

  /** The user's pipelines, newest first, optionally only those in `state`. */
  async list(user: User, state: PipelineState | null, limit: number, offset: number): Promise<Pipeline[]> {
    return this.#deps.orm.em.fork().find(Pipeline, state ? { owner: user.id, state } : { owner: user.id }, { orderBy: { id: 'desc' }, limit, offset });
  }

  async jobs(user: User, pipelineId: number): Promise<Job[]> {
    return this.#deps.orm.em.fork().find(Job, { pipeline: pipelineId, owner: user.id }, { orderBy: { position: 'asc' }, populate: ['image'] });
  }

  /** Deletes the pipeline with its jobs, their logs and files. Not while it runs. */
  async delete(user: User, id: number): Promise<Pipeline> {
    const em = this.#deps.orm.em.fork();
    const pipeline = await this.#owned(em, user, id);
    assertNotRunning(pipeline);
    const jobs = await em.find(Job, { pipeline: id });
    await em.transactional(async (tx) => {
      await tx.nativeDelete(LogLine, { source: 'job', sourceId: { $in: jobs.map((j) => j.id) } });
      await tx.nativeDelete(Pipeline, { id });
    });
    await Promise.all(jobs.map((job) => rm(path.join(this.#deps.dataDir, job.workDir), { recursive: true, force: true })));
    return pipeline;
  }

  /**
   * Runs the pipeline's jobs in position order, from a clean slate: earlier results, logs and states of
   * its jobs are dropped. Returns the jobs, now QUEUED.
   */
  async submit(user: User, id: number): Promise<Job[]> {
    const em = this.#deps.orm.em.fork();
    const ran = await em.transactional(async (tx) => {
      const pipeline = await this.#owned(tx, user, id, true);
      assertNotRunning(pipeline);
      const jobs = await tx.find(Job, { pipeline: id }, { orderBy: { position: 'asc' } });
      if (jobs.length === 0) throw new DomainError('INVALID_INPUT', 'The pipeline has no jobs.', 'id');
      // A READY job has never run (jobs leave READY at their first submit and never come back): it has
      // no log lines and no outbox to clear. The first submit of a pipeline skips both.
      const ran = jobs.filter((job) => job.state !== 'READY');
      const now = new Date();
      for (const job of jobs) {
        Object.assign(job, {
          state: 'QUEUED', exitCode: null, error: null, results: [], logTruncated: false, cpuSeconds: null, peakMemoryBytes: null,
          bytesRead: null, bytesWritten: null, containerId: null, cancelRequestedAt: null, dispatchedAt: null,
          queuedAt: now, startedAt: null, finishedAt: null,
        } satisfies Partial<Job>);
      }
      Object.assign(pipeline, { state: 'RUNNING', submittedAt: now, finishedAt: null, cancelRequestedAt: null } satisfies Partial<Pipeline>);
      if (ran.length > 0) await tx.nativeDelete(LogLine, { source: 'job', sourceId: { $in: ran.map((j) => j.id) } });
      // The first job's dispatch goes into the same flush as the reset (one round of updates, not two).
      await this.#dispatchNext(tx, pipeline, jobs);
      return ran;
    });
    // Before the wake-up: the first job may be running a few milliseconds later, and it writes its outbox here.
    await Promise.all(ran.map((job) => rm(path.join(this.#deps.dataDir, job.workDir, 'outbox'), { recursive: true, force: true })));
    this.#deps.queue.wake(JOB_TASK);
    this.#publish(id, 'RUNNING');
    return this.jobs(user, id);
  }

  /** Cancels every job not yet finished: waiting ones at once, the running one through its instance. */
  async cancel(user: User, id: number): Promise<Pipeline> {
    const em = this.#deps.orm.em.fork();
    const pipeline = await this.#owned(em, user, id);
    if (pipeline.state !== 'RUNNING') return pipeline;
    const now = new Date();
    await em.nativeUpdate(Pipeline, { id }, { cancelRequestedAt: now });
    // One statement, as before, that says which jobs it canceled: each one's change is published.
    const canceled = await query<{ id: number }>(this.#deps.orm, `update jobs set state = 'CANCELED', finished_at = $1 where pipeline_id = $2 and state = 'QUEUED' returning id`, [now, id]);
    for (const job of canceled) this.#publishJob(job.id, id, 'CANCELED');
    const running = await em.find(Job, { pipeline: id, state: 'RUNNING' });
    for (const job of running) await requestJobCancel(em, this.#deps.bus, job.id, now);
    await this.advance(id);
    return this.get(user, id);
  }

  /**
   * Moves a run forward after a job ended (or was canceled): gives the scheduler the next waiting job,
   * or, when the run is over, marks what is left SKIPPED and the pipeline's final state. Safe to call
   * more than once: the pipeline row is locked and a dispatched job is never dispatched again.
   */
  async advance(pipelineId: number): Promise<void> {
    let finalState: PipelineState | null = null;
    let dispatched = false;
    await this.#deps.orm.em.fork().transactional(async (tx) => {
      const pipeline = await tx.findOne(Pipeline, { id: pipelineId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!pipeline || pipeline.state !== 'RUNNING') return;
      const jobs = await tx.find(Job, { pipeline: pipelineId }, { orderBy: { position: 'asc' } });
      const next = await this.#dispatchNext(tx, pipeline, jobs);
      dispatched = next === 'dispatched';
      if (next !== 'ended') return;
      const now = new Date();
      if (jobs.some((job) => job.state === 'QUEUED')) await tx.nativeUpdate(Job, { pipeline: pipelineId, state: 'QUEUED' }, { state: 'SKIPPED', finishedAt: now });
      finalState = pipeline.cancelRequestedAt ? 'CANCELED' : jobs.every((job) => job.state === 'SUCCEEDED') ? 'SUCCEEDED' : 'FAILED';
      Object.assign(pipeline, { state: finalState, finishedAt: now });
    });
    // Workers are woken once the task is committed: woken before, they would find nothing to claim.
    if (dispatched) this.#deps.queue.wake(JOB_TASK);
    if (finalState) this.#publish(pipelineId, finalState);
  }

  /**
   * Dispatches the first waiting job (of `jobs`, the run's jobs in position order) when nothing of the run
   * is in flight and the run goes on, and flushes. The caller wakes the workers after its commit.
   */
  async #dispatchNext(tx: SqlEntityManager, pipeline: Pipeline, jobs: Job[]): Promise<'dispatched' | 'in-flight' | 'ended'> {
    if (jobs.some((job) => job.state === 'RUNNING' || (job.state === 'QUEUED' && job.dispatchedAt))) return 'in-flight';
    const next = jobs.find((job) => job.state === 'QUEUED');
    const stopped = jobs.some((job) => FINISHED_JOB_STATES.includes(job.state) && !['SUCCEEDED', 'SKIPPED'].includes(job.state));
    if (!next || pipeline.cancelRequestedAt || (stopped && !pipeline.continueOnFailure)) {
      await tx.flush();
      return 'ended';
    }
    next.dispatchedAt = new Date();
    await tx.flush();
    // The dispatch time tells this run's task from a stale one (a run canceled and submitted again).
    // A job with attachments runs on the instance that has them.
    const payload: JobTaskPayload = { jobId: next.id, dispatchedAt: next.dispatchedAt.toISOString() };
    await this.#deps.queue.add(JOB_TASK, payload, { em: tx, affinity: next.affinity ?? null, maxAttempts: TASK_ATTEMPTS });
    return 'dispatched';
  }

  async #owned(em: SqlEntityManager, user: User, id: number, lock = false): Promise<Pipeline> {
    const pipeline = Number.isSafeInteger(id)
      ? await em.findOne(Pipeline, { id, owner: user.id }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {})
      : null;
    if (!pipeline) throw new DomainError('NOT_FOUND', 'No such pipeline.');
    return pipeline;
  }

  /** A job's change, on its own topic and its pipeline's (as JobsService.publish). */
  #publishJob(jobId: number, pipelineId: number, state: JobState): void {
    const event = { jobId: String(jobId), pipelineId: String(pipelineId), state };
    this.#deps.bus.publish('jobUpdated', String(jobId), event);
    this.#deps.bus.publish('pipelineUpdated', String(pipelineId), event);
  }

  #publish(pipelineId: number, state: PipelineState | JobState): void {
    this.#deps.bus.publish('pipelineUpdated', String(pipelineId), { jobId: '', pipelineId: String(pipelineId), state });
  }
}

export function assertNotRunning(pipeline: Pipeline): void {
  if (pipeline.state === 'RUNNING') throw new DomainError('CONFLICT', 'The pipeline is running; cancel it or wait until it ends.');
}

function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > 200) throw new DomainError('INVALID_INPUT', 'A pipeline name has 1 to 200 characters.', 'name');
  return trimmed;
}
