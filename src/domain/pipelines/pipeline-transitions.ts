// The pipeline state machine's table (see ../transitions.ts): every state change a pipeline may make.
import type { TransitionTable } from '../transitions.ts';
import type { PipelineState } from './pipeline.entity.ts';

export const PIPELINE_TRANSITIONS = {
  /** A run starts (never while one runs). */
  submit: { from: ['IDLE', 'SUCCEEDED', 'FAILED', 'CANCELED'], to: ['RUNNING'], fields: ['submittedAt', 'finishedAt', 'cancelRequestedAt'] },
  /** The run is over: the advance that finds nothing left to dispatch. */
  end: { from: ['RUNNING'], to: ['SUCCEEDED', 'FAILED', 'CANCELED'], fields: ['finishedAt'] },
} as const satisfies TransitionTable<PipelineState>;

export type PipelineTransition = keyof typeof PIPELINE_TRANSITIONS;
