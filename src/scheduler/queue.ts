// The durable task queue in PostgreSQL. Each statement lives in its own file under sql/ (the way
// graphile-worker keeps its queue readable); claims use FOR UPDATE SKIP LOCKED so that any number of
// workers on any number of instances share the queue without taking the same task twice.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { QueryResult } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Orm } from '../db/orm.ts';
import type { EventBus } from '../events/pubsub.ts';

const sql = (name: string): string => readFileSync(new URL(`./sql/${name}.sql`, import.meta.url), 'utf8');
const ADD = sql('add-task');
const CLAIM = sql('claim-task');
const COMPLETE = sql('complete-task');
const FAIL = sql('fail-task');
const RELEASE_WORKER = sql('release-worker');
const RENEW_LEASES = sql('renew-leases');
const RELEASE_TASK = sql('release-task');
const NEXT_RUN_AT = sql('next-run-at');

/** How long a claimed task stays locked without its worker renewing the lease. */
export const DEFAULT_LEASE_MS = 5 * 60_000;

export interface Task<Payload = unknown> {
  id: string;
  kind: string;
  payload: Payload;
  /** 1 on the first run. */
  attempts: number;
  maxAttempts: number;
}

export interface AddOptions {
  runAt?: Date;
  maxAttempts?: number;
  /** Add inside this transaction, so that the task exists exactly when the row it drives does. */
  em?: SqlEntityManager;
  /** Only the worker with this id may run it (it needs files that only that instance has). */
  affinity?: string | null;
}

interface TaskRow {
  id: string | number;
  kind: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  run_at: string | Date;
}

export class TaskQueue {
  readonly #orm: Orm;
  readonly #bus: EventBus;
  readonly #localWakeups = new Set<(kind: string) => void>();

  constructor(orm: Orm, bus: EventBus) {
    this.#orm = orm;
    this.#bus = bus;
  }

  /** Persists the task, then wakes workers. Inside a caller's transaction, the caller calls `wake` after commit. */
  async add(kind: string, payload: unknown, options: AddOptions = {}): Promise<string> {
    const em = options.em ?? this.#orm.em.fork();
    const [row] = await em.execute<{ id: string | number }[]>(ADD, [
      kind,
      JSON.stringify(payload ?? {}),
      options.runAt ?? new Date(),
      options.maxAttempts ?? 1,
      options.affinity ?? null,
    ]);
    if (!options.em) this.wake(kind);
    return String(row!.id);
  }

  /** Says which process a wake-up came from: its own workers skip the bus's copy of it. */
  readonly origin = randomUUID();

  /** Wakes idle workers: this process's at once, the others through the bus. */
  wake(kind: string): void {
    for (const listener of this.#localWakeups) listener(kind);
    this.#bus.publish('taskAdded', { kind, origin: this.origin });
  }

  /** Calls `listener` for every wake-up made in this process; returns the function that stops it. */
  onLocalWake(listener: (kind: string) => void): () => void {
    this.#localWakeups.add(listener);
    return () => this.#localWakeups.delete(listener);
  }

  /**
   * Locks the next task for this worker: one without affinity, or one whose affinity is `affinity` (the
   * instance the worker belongs to). A lock not renewed for `leaseMs` counts as abandoned.
   */
  async claim(workerId: string, kinds: string[], leaseMs = DEFAULT_LEASE_MS, affinity = workerId): Promise<Task | null> {
    return (await this.claimMany(workerId, kinds, 1, leaseMs, affinity))[0] ?? null;
  }

  /** Like `claim`, up to `limit` tasks in one statement (oldest first); fewer when fewer are due. */
  async claimMany(workerId: string, kinds: string[], limit: number, leaseMs = DEFAULT_LEASE_MS, affinity = workerId): Promise<Task[]> {
    const rows = await this.#orm.em.fork().execute<TaskRow[]>(CLAIM, [kinds, affinity, leaseMs / 1000, limit, workerId]);
    return rows
      .sort((a, b) => new Date(a.run_at).getTime() - new Date(b.run_at).getTime() || Number(a.id) - Number(b.id))
      .map((row) => ({ id: String(row.id), kind: row.kind, payload: row.payload, attempts: row.attempts, maxAttempts: row.max_attempts }));
  }

  async complete(task: Task, workerId: string): Promise<void> {
    await this.#orm.em.fork().execute(COMPLETE, [task.id, workerId], 'run');
  }

  /** Releases the task for another attempt after `retryDelayMs`, or marks it failed when it has none left. */
  async fail(task: Task, workerId: string, error: string, retryDelayMs: number): Promise<void> {
    await this.#orm.em.fork().execute(FAIL, [error.slice(0, 10_000), retryDelayMs / 1000, task.id, workerId], 'run');
  }

  async release(task: Task, workerId: string): Promise<void> {
    await this.#orm.em.fork().execute(RELEASE_TASK, [task.id, workerId], 'run');
  }

  async renewLeases(workerId: string, taskIds: string[]): Promise<void> {
    if (taskIds.length > 0) await this.#orm.em.fork().execute(RENEW_LEASES, [workerId, taskIds], 'run');
  }

  /** Unlocks every task a worker of this id holds; returns how many. */
  async releaseWorker(workerId: string): Promise<number> {
    const result = await this.#orm.em.fork().execute<QueryResult>(RELEASE_WORKER, [workerId], 'run');
    return result.affectedRows;
  }

  async nextRunAt(kinds: string[]): Promise<Date | null> {
    const [row] = await this.#orm.em.fork().execute<{ run_at: string | Date | null }[]>(NEXT_RUN_AT, [kinds]);
    return row?.run_at ? new Date(row.run_at) : null;
  }
}
