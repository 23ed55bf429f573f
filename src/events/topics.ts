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
}

export type Topics = {
  /** Security-relevant changes to one user's account, scoped by user id. */
  account: [userId: string, event: AccountEvent];
  /** A task entered the queue: wakes idle workers on every instance. */
  taskAdded: [event: TaskAdded];
};
