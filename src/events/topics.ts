// The typed topic map: every event that crosses processes is declared here, with the id it is scoped to.
// Payloads travel as JSON over Redis, so they hold only JSON values (times as ISO strings).

export type AccountEventKind =
  | 'SESSION_STARTED'
  | 'SESSION_ENDED'
  | 'API_TOKEN_CREATED'
  | 'API_TOKEN_REVOKED';

export interface AccountEvent {
  kind: AccountEventKind;
  userId: string;
  /** The session or API token the event is about. */
  subjectId: string;
  at: string;
}

export interface TaskAdded {
  kind: string;
  /** The process that added it (its own workers were woken directly and skip the event). */
  origin?: string;
}

export interface LogAppended {
  /** The highest sequence number now stored. */
  lastSeq: number;
}

export interface BuildUpdated {
  buildId: string;
  state: string;
}

export interface BuildCancelRequested {
  buildId: string;
}

export interface JobUpdated {
  jobId: string;
  pipelineId: string;
  state: string;
}

export interface JobCancelRequested {
  jobId: string;
}

export type Topics = {
  /** Security-relevant changes to one user's account, scoped by user id. */
  account: [userId: string, event: AccountEvent];
  /** A task entered the queue: wakes idle workers on every instance. */
  taskAdded: [event: TaskAdded];
  /** Log lines were stored for `<source>:<id>` (e.g. `build:12`): wakes live readers, who read them from the database. */
  logAppended: [logKey: string, event: LogAppended];
  /** A build changed state, phase or progress. */
  buildUpdated: [buildId: string, event: BuildUpdated];
  /** Someone asked to cancel a running build: the instance running it stops it. */
  buildCancelRequested: [event: BuildCancelRequested];
  /** A job changed state (or its usage was sampled). */
  jobUpdated: [jobId: string, event: JobUpdated];
  /** A job or the pipeline around it changed: scoped by pipeline. */
  pipelineUpdated: [pipelineId: string, event: JobUpdated];
  /** Someone asked to cancel a running job: the instance running it stops it. */
  jobCancelRequested: [event: JobCancelRequested];
};
