// Runs one dispatched job (the scheduler calls `run` for each claimed job task): start its container
// from the fixed template, store every output line, sample its resource use, stop it on cancel or
// timeout, keep its /outbox, record how it ended (and publish it), move its pipeline on to the next
// job, and remove the container once all that is done (without holding the job's slot).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Orm } from '../../db/orm.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { JobSettings } from '../../config.ts';
import type { Task } from '../../scheduler/queue.ts';
import { whileDatabaseUnavailable } from '../../db/availability.ts';
import { OutboxTooLarge, type JobRunner, type OutboxFile, type ResourceUsage } from '../../runner/jobs.ts';
import { UnsafeOutboxEntry } from '../../runner/outbox.ts';
import { EngineUnavailable, type EngineAvailability } from '../../runner/engine-availability.ts';
import { OutageLog } from '../../util/outage-log.ts';
import { LineSplitter } from '../logs/line-splitter.ts';
import { CappedLog, LogWriter, type LogsService } from '../logs/logs.service.ts';
import type { JobTaskPayload, PipelinesService } from '../pipelines/pipelines.service.ts';
import { Job, type JobState } from './job.entity.ts';
import type { JobsService } from './jobs.service.ts';

export interface JobExecutorDeps {
  orm: Orm;
  bus: EventBus;
  runner: JobRunner;
  logs: LogsService;
  jobs: JobsService;
  pipelines: PipelinesService;
  settings: JobSettings;
  instanceId: string;
  /** Waits for an engine that does not answer before a job starts (none: the job starts and fails at once). */
  engineAvailability?: EngineAvailability;
}

type Ending = 'CANCELED' | 'TIMED_OUT' | 'SERVICE_STOPPING';

const CANCEL_POLL_MS = 2000;

interface Outcome {
  state: JobState;
  exitCode: number | null;
  error: string | null;
}

/** How a run ended: the outcome, what the job used, and the files kept from its /outbox. */
interface Ended {
  outcome: Outcome;
  usage: ResourceUsage | null;
  results: OutboxFile[];
}

/** The job's container once it exists: removed by `run` after the final state is recorded. */
interface Started {
  containerId: string | null;
}

/**
 * A job of this process from the moment it is RUNNING until its container exited: a cancel request, the
 * timeout or a shutdown ends it, also while its container is still being made (it is stopped once it exists).
 */
class RunControl {
  ending: Ending | null = null;
  #stop: (() => void) | null = null;
  readonly #ended = new AbortController();
  /** Aborted by an ending: what the job waits for before its container exists (the engine) is waited for no longer. */
  readonly signal = this.#ended.signal;

  end(reason: Ending): void {
    if (this.ending) return;
    this.ending = reason;
    this.#ended.abort(new Error(`the job ended: ${reason}`));
    this.#stop?.();
  }

  /** The container exists: `stop` ends it, at once if an ending came while it was being made. */
  started(stop: () => void): void {
    this.#stop = stop;
    if (this.ending) stop();
  }
}

export class JobExecutor {
  readonly #deps: JobExecutorDeps;
  /** Jobs running in this process: cancel requests from any instance, timeouts and shutdown stop them. */
  readonly #running = new Map<number, RunControl>();
  /** Removals of finished jobs' containers, going on after their tasks ended. */
  readonly #removals = new Set<Promise<void>>();
  #cancelRequests: AsyncIterator<unknown> | null = null;
  #stopping = false;
  /** The periodic removal of leftover containers and volumes (removeLeftovers), and the one in progress. */
  #cleanupTimer: NodeJS.Timeout | null = null;
  #cleanup: Promise<void> | null = null;
  readonly #cleanupOutage = new OutageLog('jobs: removing leftover job containers and volumes');

  constructor(deps: JobExecutorDeps) {
    this.#deps = deps;
  }

  start(): void {
    const { cleanupIntervalSeconds, concurrency } = this.#deps.settings;
    if (cleanupIntervalSeconds > 0 && concurrency > 0) {
      this.#cleanupTimer = setInterval(() => void (this.#cleanup ??= this.#removeLeftoversLogged().finally(() => (this.#cleanup = null))), cleanupIntervalSeconds * 1000);
      this.#cleanupTimer.unref();
    }
    const requests = this.#deps.bus.subscribe('jobCancelRequested')[Symbol.asyncIterator]();
    this.#cancelRequests = requests;
    void (async () => {
      for (let step = await requests.next(); !step.done; step = await requests.next()) {
        this.#running.get(Number((step.value as { jobId: string }).jobId))?.end('CANCELED');
      }
    })().catch((error: unknown) => console.error('jobs: cancel listener failed', error));
  }

  /** On shutdown: stop what runs here (and what is starting); those jobs end ERRORED, saying why. */
  stopAll(): void {
    this.#stopping = true;
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    for (const running of this.#running.values()) running.end('SERVICE_STOPPING');
  }

  /** After the workers stopped: waits for the removals of finished jobs' containers. */
  async stop(): Promise<void> {
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    await this.#cancelRequests?.return?.();
    await Promise.allSettled([...this.#removals, this.#cleanup]);
  }

  /**
   * At start-up: a job container this instance left behind is stopped and removed, and its job (if it
   * was still RUNNING) ends ERRORED. Jobs RUNNING with no container end ERRORED when their task comes back.
   */
  async reconcile(): Promise<number> {
    const { runner, settings, instanceId } = this.#deps;
    let ended = 0;
    for (const container of await runner.listManaged()) {
      if (container.instanceId !== instanceId) continue;
      await runner.discard(container.containerId, settings.stopGraceSeconds);
      const job = await this.#deps.orm.em.fork().findOne(Job, { id: container.jobId }, { populate: ['pipeline'] });
      if (job?.state === 'RUNNING') {
        await this.#finishAbandoned(job, 'The service restarted while the job ran; its container was stopped.');
        ended++;
      }
    }
    await this.#removeLeftoverVolumes();
    return ended;
  }

  /**
   * Every JOB_CLEANUP_INTERVAL_SECONDS: this instance's job containers and volumes whose job does not run
   * here (their removal failed while the engine was away, a start was cut short) are removed without a
   * restart. Jobs are not touched: one whose run here ended has, or is recording, its final state.
   */
  async removeLeftovers(): Promise<{ containers: number; volumes: number }> {
    const { runner, settings, instanceId } = this.#deps;
    let containers = 0;
    // Listed before what runs here is looked at: a job's container and volumes exist only from when it runs here.
    for (const container of await runner.listManaged()) {
      if (container.instanceId !== instanceId || this.#running.has(container.jobId)) continue;
      await runner.discard(container.containerId, settings.stopGraceSeconds);
      containers++;
    }
    return { containers, volumes: await this.#removeLeftoverVolumes() };
  }

  async #removeLeftoversLogged(): Promise<void> {
    try {
      const removed = await this.removeLeftovers();
      this.#cleanupOutage.succeeded();
      if (removed.containers + removed.volumes > 0) console.log(`jobs: removed ${removed.containers} container(s) and ${removed.volumes} volume(s) left on the engine`);
    } catch (error) {
      this.#cleanupOutage.failed(error);
    }
  }

  /** Volumes of this instance's jobs that do not run here; one the engine keeps (its container remains) waits for the next round. */
  async #removeLeftoverVolumes(): Promise<number> {
    const { runner, instanceId } = this.#deps;
    let removed = 0;
    for (const volume of await runner.listManagedVolumes()) {
      if (volume.instanceId !== instanceId || this.#running.has(volume.jobId)) continue;
      if (await runner.removeVolume(volume.name)) removed++;
    }
    return removed;
  }

  /** The task handler. */
  run = async (task: Task): Promise<void> => {
    const { jobId, dispatchedAt } = task.payload as JobTaskPayload;
    // Thrown, not returned: the task is tried again after the restart instead of being dropped.
    if (this.#stopping) throw new Error('the service is stopping');
    if (this.#running.has(jobId)) return; // a lease that lapsed while the job runs here
    // The job is read and taken (QUEUED → RUNNING, for this run only) at the same time: one round trip
    // before the container is made, not two. The read only matters when the job was not taken.
    const [job, taken] = await Promise.all([
      // Only the image is needed whole (its engine id); the pipeline and owner are used by id.
      this.#deps.orm.em.fork().findOne(Job, { id: jobId }, { populate: ['image'] }),
      this.#deps.orm.em.fork().nativeUpdate(Job, { id: jobId, state: 'QUEUED', dispatchedAt: new Date(dispatchedAt) }, { state: 'RUNNING', startedAt: new Date() }),
    ]);
    if (!job) return;
    if (taken !== 1) {
      if (job.dispatchedAt?.toISOString() !== dispatchedAt) return; // a task of an earlier run of this job
      if (job.state === 'RUNNING') {
        // Taken over after its instance crashed or vanished: its container (if any) is that instance's to remove.
        return this.#finishAbandoned(job, 'The instance running this job stopped or crashed.');
      }
      return this.#deps.pipelines.advance(job.pipeline.id); // canceled meanwhile
    }
    // Registered before its container is made: a cancel request from now on is not lost (one whose event
    // Redis dropped is found by the poll of the database flag in #execute).
    const control = new RunControl();
    this.#running.set(job.id, control);
    if (this.#stopping) control.end('SERVICE_STOPPING');
    this.#deps.jobs.publish(job, 'RUNNING');
    const log = new CappedLog(new LogWriter(this.#deps.logs, 'job', job.id, 1), this.#deps.settings.logMaxBytes);
    const started: Started = { containerId: null };
    let ended: Ended;
    try {
      ended = await this.#execute(job, log, started, control);
    } catch (error) {
      console.error(`jobs: job ${job.id} could not run`, error);
      ended = { outcome: { state: 'ERRORED', exitCode: null, error: `The engine failed: ${(error as Error).message}` }, usage: null, results: [] };
    } finally {
      this.#running.delete(job.id);
    }
    const { outcome } = ended;
    if (outcome.state !== 'SUCCEEDED') log.system(`${outcome.state}${outcome.exitCode !== null ? ` (exit code ${outcome.exitCode})` : ''}: ${outcome.error ?? ''}`);
    // Removing the container and its volumes takes the engine tens of ms: the final state is recorded and
    // published first, and the removal goes on after the job's slot is free (the job no longer runs).
    // `stop` waits for removals in progress; a crash before one is done leaves the container to `reconcile`.
    const removal = () => (started.containerId !== null ? this.#remove(job, started.containerId) : Promise.resolve());
    try {
      // Every line read from the engine is stored before the final state, however long the database is
      // away (the lines wait in memory, then in a spool file); only a stopping service gives up.
      const giveUp = () => this.#stopping;
      await log.close(giveUp).catch((error: unknown) => console.error(`jobs: could not store the last output of job ${job.id}`, error));
      // The container id is kept for operators; it is written here, with the rest, to save a statement per job.
      const extra = { logTruncated: log.truncated, results: ended.results, ...(started.containerId ? { containerId: started.containerId } : {}) };
      await whileDatabaseUnavailable(() => this.#record(job, outcome, ended.usage, extra), giveUp);
    } catch (error) {
      await removal();
      throw error;
    }
    const removing = removal().finally(() => this.#removals.delete(removing));
    this.#removals.add(removing);
    await whileDatabaseUnavailable(() => this.#deps.pipelines.advance(job.pipeline.id), () => this.#stopping);
    // A slow engine must not pile up removals: past one per slot, the slot waits for them.
    while (this.#removals.size > Math.max(1, this.#deps.settings.concurrency)) await Promise.race(this.#removals);
  };

  /** Ends a job whose runner is gone (crash, restart): ERRORED, with a closing line in its log saying why. */
  async #finishAbandoned(job: Job, error: string): Promise<void> {
    await this.#deps.logs.appendClosingLine('job', job.id, `ERRORED: ${error}`).catch((failure: unknown) => console.error(`jobs: could not store the closing line of job ${job.id}`, failure));
    await this.#finish(job, { state: 'ERRORED', exitCode: null, error }, null);
  }

  async #remove(job: Job, containerId: string): Promise<void> {
    await this.#deps.runner.remove(containerId).catch((error: unknown) => console.error(`jobs: could not remove container of job ${job.id}`, error));
  }

  /** Runs the container to its end and keeps its /outbox; the container is left for the caller to remove (`started`). */
  async #execute(job: Job, log: CappedLog, started: Started, control: RunControl): Promise<Ended> {
    const { runner, settings } = this.#deps;
    const inbox = this.#deps.jobs.inboxDir(job);
    const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    const unavailable = await this.#waitForEngine(control, log);
    if (unavailable) return { outcome: unavailable, usage: null, results: [] };
    const container = await runner.start(
      {
        jobId: job.id,
        ownerId: job.owner.id,
        instanceId: this.#deps.instanceId,
        image: job.image.dockerImageId!,
        command: job.command,
        env: job.env,
        inbox: job.attachments.map((a) => ({ name: a.name, path: path.join(inbox, a.name) })),
        limits: { memoryBytes: Number(job.memoryBytes), cpus: Number(job.cpus), pidsLimit: settings.pidsLimit, tmpBytes: settings.tmpBytes, stopGraceSeconds: settings.stopGraceSeconds },
      },
      (stream, chunk) => splitters[stream].push(chunk).forEach((line) => log.write(stream, line)),
    );
    started.containerId = container.containerId;
    control.started(() => void container.stop(settings.stopGraceSeconds).catch(() => {}));
    // The outbox directory is made empty while the job runs, not after it ended.
    const outboxDir = this.#deps.jobs.outboxDir(job);
    const outboxReady = rm(outboxDir, { recursive: true, force: true }).then(() => mkdir(outboxDir, { recursive: true }));
    outboxReady.catch(() => {}); // reported where it is awaited
    const timer = setTimeout(() => control.end('TIMED_OUT'), job.timeoutSeconds * 1000);
    // Cancel requests travel as events, which a Redis outage can drop: the database flag is polled too.
    const checkCancel = async () => {
      const current = await this.#deps.orm.em.fork().findOne(Job, { id: job.id }, { fields: ['cancelRequestedAt'] }).catch(() => null);
      if (current?.cancelRequestedAt) control.end('CANCELED');
    };
    const cancelCheck = setInterval(() => void checkCancel(), CANCEL_POLL_MS);
    try {
      const exit = await container.exited;
      for (const stream of ['stdout', 'stderr'] as const) splitters[stream].end().forEach((line) => log.write(stream, line));
      const usage = container.usage();
      const stopped = control.ending;
      const ended = (outcome: Outcome, results: OutboxFile[] = []): Ended => ({ outcome, usage, results });
      if (stopped === 'CANCELED') return ended({ state: 'CANCELED', exitCode: exit.exitCode, error: 'Canceled.' });
      if (stopped === 'TIMED_OUT') return ended({ state: 'TIMED_OUT', exitCode: exit.exitCode, error: `The job ran longer than ${job.timeoutSeconds} s.` });
      if (stopped === 'SERVICE_STOPPING') return ended({ state: 'ERRORED', exitCode: exit.exitCode, error: 'The service stopped while the job ran.' });
      const outbox = await this.#collectOutbox(container.containerId, outboxDir, outboxReady);
      if ('state' in outbox) return ended(outbox);
      if (exit.oomKilled) return ended({ state: 'FAILED', exitCode: exit.exitCode, error: `The job ran out of memory (limit ${Number(job.memoryBytes)} bytes).` }, outbox.results);
      return ended({ state: exit.exitCode === 0 ? 'SUCCEEDED' : 'FAILED', exitCode: exit.exitCode, error: null }, outbox.results);
    } finally {
      clearTimeout(timer);
      clearInterval(cancelCheck);
    }
  }

  /**
   * Before anything is made: an engine that does not answer (restarting) is waited for, up to
   * ENGINE_WAIT_SECONDS, saying so in the log. The outcome of a job that does not start, or null.
   */
  async #waitForEngine(control: RunControl, log: CappedLog): Promise<Outcome | null> {
    try {
      await this.#deps.engineAvailability?.wait(control.signal, (line) => log.system(line));
      return null;
    } catch (error) {
      if (control.ending === 'CANCELED') return { state: 'CANCELED', exitCode: null, error: 'Canceled.' };
      if (control.ending) return { state: 'ERRORED', exitCode: null, error: 'The service stopped while the job waited for the engine.' };
      if (error instanceof EngineUnavailable) return { state: 'ERRORED', exitCode: null, error: error.message };
      throw error;
    }
  }

  /** Keeps /outbox in `dir` (empty once `ready`); a failing outcome when it is over a cap. */
  async #collectOutbox(containerId: string, dir: string, ready: Promise<unknown>): Promise<Outcome | { results: OutboxFile[] }> {
    const { settings } = this.#deps;
    await ready;
    try {
      const results = await this.#deps.runner.collectOutbox(containerId, dir, {
        maxTotalBytes: settings.outboxMaxBytes,
        maxFiles: settings.outboxMaxFiles,
        maxFileBytes: settings.outboxMaxBytes,
      });
      return { results };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      if (error instanceof OutboxTooLarge) return { state: 'FAILED', exitCode: null, error: `The job's /outbox is too large: ${error.message}` };
      if (error instanceof UnsafeOutboxEntry) return { state: 'FAILED', exitCode: null, error: `The job's /outbox cannot be kept: ${error.message}` };
      throw error;
    }
  }

  /** Records the final state, then moves the pipeline on. */
  async #finish(job: Job, outcome: Outcome, usage: ResourceUsage | null): Promise<void> {
    await this.#record(job, outcome, usage, {});
    await this.#deps.pipelines.advance(job.pipeline.id);
  }

  /**
   * Stores the outcome with the results and usage in one write, and publishes it. Only a RUNNING job is
   * changed: one that another instance has ended already keeps its state.
   */
  async #record(job: Job, outcome: Outcome, usage: ResourceUsage | null, extra: { logTruncated?: boolean; results?: OutboxFile[]; containerId?: string }): Promise<void> {
    const changed = await this.#deps.orm.em.fork().nativeUpdate(Job, { id: job.id, state: 'RUNNING' }, {
      state: outcome.state,
      exitCode: outcome.exitCode,
      error: outcome.error,
      finishedAt: new Date(),
      ...extra,
      ...(usage ? { cpuSeconds: usage.cpuSeconds, peakMemoryBytes: usage.peakMemoryBytes, bytesRead: usage.bytesRead, bytesWritten: usage.bytesWritten } : {}),
    });
    if (changed === 1) this.#deps.jobs.publish(job, outcome.state);
  }
}
