// The build state machine's table (see ../transitions.ts): every state change a build may make.
import type { TransitionTable } from '../transitions.ts';
import type { BuildState } from './build.entity.ts';

export const BUILD_TRANSITIONS = {
  /** An instance claims the build's task. */
  take: { from: ['QUEUED'], to: ['RUNNING'], fields: ['startedAt'] },
  /** How the build ended; its push credentials are dropped. */
  finish: { from: ['RUNNING'], to: ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'], fields: ['error', 'finishedAt', 'pushSecret'] },
  /** A queued build canceled at once. */
  cancel: { from: ['QUEUED'], to: ['CANCELED'], fields: ['finishedAt', 'cancelRequestedAt', 'pushSecret'] },
  /** A running build asked to stop: the instance running it ends it. */
  requestCancel: { from: ['RUNNING'], to: ['RUNNING'], fields: ['cancelRequestedAt'] },
} as const satisfies TransitionTable<BuildState>;

export type BuildTransition = keyof typeof BUILD_TRANSITIONS;
