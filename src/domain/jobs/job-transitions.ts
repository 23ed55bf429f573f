// The job state machine's table (see ../transitions.ts): every state change a job may make.
import type { TransitionTable } from '../transitions.ts';
import { FINISHED_JOB_STATES, type JobState } from './job.entity.ts';

export const JOB_TRANSITIONS = {
  /** A submit: every job of the run starts again from a clean slate. */
  queue: {
    from: ['READY', ...FINISHED_JOB_STATES],
    to: ['QUEUED'],
    fields: ['exitCode', 'error', 'results', 'logTruncated', 'cpuSeconds', 'peakMemoryBytes', 'bytesRead', 'bytesWritten', 'containerId', 'cancelRequestedAt', 'dispatchedAt', 'queuedAt', 'startedAt', 'finishedAt'],
  },
  /** An instance claims the job's task (for this run only: its dispatch time matches). */
  take: { from: ['QUEUED'], to: ['RUNNING'], fields: ['startedAt'] },
  /** How the run ended, with its usage and results. */
  finish: {
    from: ['RUNNING'],
    to: ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'],
    fields: ['exitCode', 'error', 'finishedAt', 'logTruncated', 'results', 'containerId', 'cpuSeconds', 'peakMemoryBytes', 'bytesRead', 'bytesWritten'],
  },
  /** A waiting job canceled (by itself or with its pipeline). */
  cancel: { from: ['QUEUED'], to: ['CANCELED'], fields: ['finishedAt', 'cancelRequestedAt'] },
  /** A running job asked to stop: the instance running it ends it (state unchanged until then). */
  requestCancel: { from: ['RUNNING'], to: ['RUNNING'], fields: ['cancelRequestedAt'] },
  /** The run ended before this job: it will not run. */
  skip: { from: ['QUEUED'], to: ['SKIPPED'], fields: ['finishedAt'] },
} as const satisfies TransitionTable<JobState>;

export type JobTransition = keyof typeof JOB_TRANSITIONS;
