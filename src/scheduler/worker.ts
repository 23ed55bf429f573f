// Runs queued tasks: claims while it has free slots (the concurrency limit), runs each with the
// handler for its kind, and sleeps until a task is added anywhere (pub/sub), a slot frees up, or the
// next poll. Tasks held by a previous run of the same worker id are released at start.
import type { EventBus } from '../events/pubsub.ts';
import type { TaskAdded } from '../events/topics.ts';
import { DEFAULT_LEASE_MS, type Task, type TaskQueue } from './queue.ts';
import { OutageLog } from '../util/outage-log.ts';

export type TaskHandler = (task: Task) => Promise<void>;

export interface WorkerOptions {
  /** Stable across restarts of the same instance, so that a restart can release what a crash left locked. */
  workerId: string;
  /** The instance this worker belongs to: it also runs the tasks that must run there (default: workerId). */
  affinity?: string;
  concurrency: number;
  handlers: Record<string, TaskHandler>;
  /** Upper bound on how long a due task can wait when no wake-up arrives. */
  pollIntervalMs?: number;
  /** A running task's lock is renewed every fifth of this; another worker takes over a task whose lease ran out. */
  leaseMs?: number;
  /** Delay before attempt n + 1 after attempt n failed. */
  retryDelayMs?: (attempt: number) => number;
  onError?: (error: unknown, task: Task | null) => void;
  /** Where the one line per outage of claims and lease renewals goes (the database being away). */
  logOutage?: (line: string) => void;
}

export class Worker {
  readonly #queue: TaskQueue;
  readonly #bus: EventBus;
  readonly #options: Required<WorkerOptions>;
  readonly #kinds: string[];
  readonly #active = new Map<string, Promise<void>>();
  #renewal: NodeJS.Timeout | null = null;
  #stopping = false;
  #wakeUp: (() => void) | null = null;
  /** A wake-up that came while the loop was claiming, not sleeping: the next sleep returns at once. */
  #wakePending = false;
  #loop: Promise<void> | null = null;
  #wakeups: AsyncIterator<unknown> | null = null;
  #stopLocalWakeups: (() => void) | null = null;
  /** Claims and renewals fail together while the database is away: one line when they start failing, one when they work again. */
  readonly #claims: OutageLog;
  readonly #renewals: OutageLog;

  constructor(queue: TaskQueue, bus: EventBus, options: WorkerOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) throw new Error('concurrency must be a positive integer');
    this.#queue = queue;
    this.#bus = bus;
    this.#kinds = Object.keys(options.handlers);
    this.#options = {
      affinity: options.workerId,
      pollIntervalMs: 1000,
      leaseMs: DEFAULT_LEASE_MS,
      retryDelayMs: (attempt) => Math.min(60_000, 1000 * 2 ** (attempt - 1)),
      onError: (error, task) => console.error(`scheduler: task ${task?.id ?? '-'} (${task?.kind ?? 'claim'}) failed`, error),
      logOutage: (line) => console.error(line),
      ...options,
    };
    this.#claims = new OutageLog(`scheduler ${this.#options.workerId}: claiming tasks`, this.#options.logOutage);
    this.#renewals = new OutageLog(`scheduler ${this.#options.workerId}: renewing leases`, this.#options.logOutage);
  }

  get running(): number {
    return this.#active.size;
  }

  async start(): Promise<void> {
    await this.#queue.releaseWorker(this.#options.workerId);
    this.#stopLocalWakeups = this.#queue.onLocalWake((kind) => {
      if (this.#kinds.includes(kind)) this.#nudge();
    });
    const wakeups = this.#bus.subscribe('taskAdded')[Symbol.asyncIterator]();
    this.#wakeups = wakeups;
    void (async () => {
      for (let step = await wakeups.next(); !step.done; step = await wakeups.next()) {
        const { kind, origin } = step.value as TaskAdded;
        // This process's own wake-ups reached its workers directly (onLocalWake).
        if (origin !== this.#queue.origin && this.#kinds.includes(kind)) this.#nudge();
      }
    })().catch((error: unknown) => this.#options.onError(error, null)); // polling still finds the work
    this.#renewal = setInterval(() => {
      this.#queue.renewLeases(this.#options.workerId, [...this.#active.keys()]).then(
        () => this.#renewals.succeeded(),
        (error: unknown) => this.#renewals.failed(error),
      );
    }, this.#options.leaseMs / 5);
    this.#loop = this.#run();
  }

  /** Stops claiming and waits for the tasks in progress to finish. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#nudge();
    this.#stopLocalWakeups?.();
    await this.#wakeups?.return?.();
    await this.#loop;
    await Promise.allSettled(this.#active.values());
    if (this.#renewal) clearInterval(this.#renewal);
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      while (this.#active.size < this.#options.concurrency && !this.#stopping) {
        // As many as there are free slots, in one statement: a lone new task costs one claim, not two
        // (the second finding nothing).
        const free = this.#options.concurrency - this.#active.size;
        let tasks: Task[];
        try {
          tasks = await this.#queue.claimMany(this.#options.workerId, this.#kinds, free, this.#options.leaseMs, this.#options.affinity);
          this.#claims.succeeded();
        } catch (error) {
          this.#claims.failed(error);
          break;
        }
        if (this.#stopping) {
          // Claimed while the worker was asked to stop: given back, for the next start or another instance.
          for (const task of tasks) await this.#queue.release(task, this.#options.workerId).catch((error: unknown) => this.#options.onError(error, task));
          break;
        }
        for (const task of tasks) this.#start(task);
        if (tasks.length < free) break; // nothing more is due now
      }
      await this.#sleep();
    }
  }

  #start(task: Task): void {
    const { workerId, handlers, retryDelayMs, onError } = this.#options;
    const running = (async () => {
      try {
        await handlers[task.kind]!(task);
        await this.#queue.complete(task, workerId);
      } catch (error) {
        onError(error, task);
        await this.#queue
          .fail(task, workerId, error instanceof Error ? error.message : String(error), retryDelayMs(task.attempts))
          .catch((failError: unknown) => onError(failError, task));
      }
    })().finally(() => {
      this.#active.delete(task.id);
      this.#nudge();
    });
    this.#active.set(task.id, running);
  }

  #sleep(): Promise<void> {
    if (this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#wakeUp === done) this.#wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, this.#options.pollIntervalMs);
      this.#wakeUp = done;
    });
  }

  #nudge(): void {
    const wakeUp = this.#wakeUp;
    this.#wakeUp = null;
    if (wakeUp) wakeUp();
    else this.#wakePending = true;
  }
}
