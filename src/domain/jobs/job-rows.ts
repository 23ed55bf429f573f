// Reads of job rows by id, batched across requests: every read asked for in one turn of the event loop
// goes to the database as one statement. Under load (many clients polling their jobs) that is one
// round trip for many requests, instead of a query, a socket write and a result to parse for each.
//
// A read is only ever answered by a statement sent after it was asked for (a batch that has been sent
// takes no more reads), so a client sees every write that finished before it asked.
import type { EntityDictionary } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import type { Job } from './job.entity.ts';

type JobRow = EntityDictionary<Job> & { id: number };

interface Waiter {
  resolve: (row: JobRow | undefined) => void;
  reject: (error: unknown) => void;
}

/** Above this many ids a batch is sent at once, and the next read starts another. */
const MAX_BATCH = 500;

export class JobRows {
  readonly #orm: Orm;
  /** The batch being collected: waiters by job id. Null when none is. */
  #pending: Map<number, Waiter[]> | null = null;

  constructor(orm: Orm) {
    this.#orm = orm;
  }

  /** The row of the job (all columns, as the database names them), or undefined when there is none. */
  read(id: number): Promise<JobRow | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.#pending) {
        const batch = new Map<number, Waiter[]>();
        this.#pending = batch;
        // setImmediate, not a microtask: requests whose bytes arrived in the same poll of the sockets
        // all get here before it runs.
        setImmediate(() => this.#send(batch));
      }
      const batch = this.#pending;
      const waiters = batch.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else batch.set(id, [{ resolve, reject }]);
      if (batch.size >= MAX_BATCH) this.#send(batch);
    });
  }

  #send(batch: Map<number, Waiter[]>): void {
    if (this.#pending === batch) this.#pending = null;
    else if (batch.size === 0) return; // (sent already, when it filled up)
    const ids = [...batch.keys()];
    const waiters = new Map(batch);
    batch.clear();
    this.#orm.em
      .getConnection()
      .execute<JobRow[]>('select * from jobs where id in (?)', [ids])
      .then((rows) => {
        const byId = new Map(rows.map((row) => [Number(row.id), row]));
        for (const [id, list] of waiters) for (const waiter of list) waiter.resolve(byId.get(id));
      })
      .catch((error: unknown) => {
        for (const list of waiters.values()) for (const waiter of list) waiter.reject(error);
      });
  }
}
