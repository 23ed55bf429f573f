// Kabuto's JSON shapes for Dockyard's entities (its `as_dict` methods), and the names Kabuto used for
// states. Pure functions: what an entity looks like on Kabuto's wire, nothing about what may happen to it.
import type { Build } from '../../domain/builds/build.entity.ts';
import type { Image } from '../../domain/images/image.entity.ts';
import type { Job, JobState } from '../../domain/jobs/job.entity.ts';
import type { LogLine } from '../../domain/logs/log-line.entity.ts';
import type { Pipeline } from '../../domain/pipelines/pipeline.entity.ts';

/** Kabuto's DATE_FORMAT, `%Y-%m-%d` (UTC). */
export function creationDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Kabuto's maps of entities are keyed by the id as a string. */
export function byId<T extends { id: number }>(items: T[], format: (item: T) => unknown): Record<string, unknown> {
  return Object.fromEntries(items.map((item) => [String(item.id), format(item)]));
}

export function imageJson(image: Image): Record<string, unknown> {
  return { id: image.id, name: image.name, dockerfile: image.dockerfile ?? null, creation_date: creationDate(image.createdAt) };
}

export function pipelineJson(pipeline: Pipeline, jobs: Job[]): Record<string, unknown> {
  return { id: pipeline.id, name: pipeline.name, creation_date: creationDate(pipeline.createdAt), jobs: jobs.map((job) => ({ id: job.id })) };
}

const JOB_STATE_NAMES: Record<JobState, string> = {
  READY: 'ready',
  QUEUED: 'in_queue',
  RUNNING: 'running',
  SUCCEEDED: 'done',
  FAILED: 'failed',
  ERRORED: 'failed',
  CANCELED: 'failed',
  TIMED_OUT: 'failed',
  SKIPPED: 'failed',
};

export function jobState(state: JobState): string {
  return JOB_STATE_NAMES[state];
}

/**
 * Kabuto's job, with `response` (the exit code, from Kabuto's later code). `used_cpu` is CPU seconds,
 * `used_memory` the peak memory in bytes, `used_io` bytes read plus written. The worker secrets
 * `attachment_token` and `results_path` are kept as keys for old clients, always null.
 */
export function jobJson(job: Job): Record<string, unknown> {
  return {
    id: job.id,
    command: commandLine(job.command),
    state: jobState(job.state),
    creation_date: creationDate(job.createdAt),
    response: job.exitCode ?? null,
    used_cpu: Number(job.cpuSeconds ?? 0),
    used_memory: Number(job.peakMemoryBytes ?? 0),
    used_io: Number(job.bytesRead ?? 0) + Number(job.bytesWritten ?? 0),
    attachment_token: null,
    results_path: null,
    image: { id: job.image.id },
    pipeline: { id: job.pipeline.id },
  };
}

export function logLineJson(jobId: number, line: LogLine): Record<string, unknown> {
  return { id: line.seq, job: jobId, logline: line.text };
}

/** The argv as one line that splits back into the same argv (POSIX shell quoting, like Python's shlex.join). */
export function commandLine(argv: string[]): string {
  return argv.map((arg) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`)).join(' ');
}

/**
 * `GET /image/build/<id>`: PENDING while queued or running; SUCCESS with the image id; FAILED when the
 * build did not succeed (a Dockerfile or source error, a timeout, a cancel); FAILURE when the service or
 * the engine failed. `output` is the build's log, one line per line.
 */
export function buildStatusJson(build: Build, output: string): Record<string, unknown> {
  switch (build.state) {
    case 'QUEUED':
    case 'RUNNING':
      return { state: 'PENDING' };
    case 'SUCCEEDED':
      return { state: 'SUCCESS', id: build.image.id, output };
    case 'ERRORED':
      return { state: 'FAILURE', error: build.error ?? 'The build failed.', output };
    default:
      return { state: 'FAILED', error: build.error ?? 'The build failed.', output };
  }
}
