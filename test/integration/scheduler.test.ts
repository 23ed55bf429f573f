// The durable queue on real PostgreSQL: exactly-once claims across workers, the concurrency limit,
// durability across a restart, retries, and release of what a crashed worker held.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/orm.ts';
import { redisEvents } from '../../src/events/pubsub.ts';
import { TaskQueue, type Task } from '../../src/scheduler/queue.ts';
import { Worker } from '../../src/scheduler/worker.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/env.ts';
import { testDatabase } from '../support/db.ts';

const orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: '/nonexistent' });
const events = await redisEvents(TEST_REDIS_URL);
afterAll(async () => {
  await orm.close();
  await events.close();
});
const db = testDatabase();
const queue = new TaskQueue(orm, events.bus);
/** Each test uses its own task kind: test files share the database. */
const kind = () => `test-${randomUUID()}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('scheduler', () => {
  it('runs every task exactly once across two workers, each within its concurrency limit', async () => {
    const k = kind();
    const ran: number[] = [];
    const running = { a: 0, b: 0 };
    const peak = { a: 0, b: 0 };
    const handler = (id: 'a' | 'b') => async (task: Task) => {
      running[id]++;
      peak[id] = Math.max(peak[id], running[id]);
      await sleep(5);
      ran.push((task.payload as { n: number }).n);
      running[id]--;
    };
    const workers = (['a', 'b'] as const).map((id) => new Worker(queue, events.bus, { workerId: `${k}-${id}`, concurrency: 3, handlers: { [k]: handler(id) } }));
    await Promise.all(workers.map((w) => w.start()));
    for (let n = 0; n < 60; n++) await queue.add(k, { n });
    await until(() => ran.length >= 60);
    await Promise.all(workers.map((w) => w.stop()));
    expect(ran).toHaveLength(60);
    expect(new Set(ran).size).toBe(60);
    expect(peak.a).toBeLessThanOrEqual(3);
    expect(peak.b).toBeLessThanOrEqual(3);
    expect(peak.a + peak.b).toBeGreaterThan(2);
    const { rows } = await db.query('select count(*)::int as n from tasks where kind = $1', [k]);
    expect(rows[0].n).toBe(0);
  });

  it('keeps a queued task across a restart: a worker started later runs it', async () => {
    const k = kind();
    await queue.add(k, { hello: 'world' });
    const seen: unknown[] = [];
    const later = new Worker(new TaskQueue(orm, events.bus), events.bus, { workerId: `${k}-w`, concurrency: 1, handlers: { [k]: async (t) => void seen.push(t.payload) } });
    await later.start();
    await until(() => seen.length === 1);
    await later.stop();
    expect(seen).toEqual([{ hello: 'world' }]);
  });

  it('wakes an idle worker of this process at once, without the bus', async () => {
    const k = kind();
    const done: number[] = [];
    // A bus that carries nothing: the wake-up can only come from the queue in this process.
    const silent = { publish: () => {}, subscribe: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise<never>(() => {}), return: async () => ({ done: true, value: undefined }) }) }) };
    const localQueue = new TaskQueue(orm, silent as never);
    const worker = new Worker(localQueue, silent as never, { workerId: `${k}-w`, concurrency: 1, pollIntervalMs: 60_000, handlers: { [k]: async () => void done.push(Date.now()) } });
    await worker.start();
    await sleep(300); // the worker has found nothing and sleeps
    const added = Date.now();
    await localQueue.add(k, {});
    await until(() => done.length === 1, 5000);
    await worker.stop();
    expect(done[0]! - added).toBeLessThan(1000);
  });

  it('wakes an idle worker of another instance through the bus, well before its next poll', async () => {
    const k = kind();
    const done: number[] = [];
    const worker = new Worker(new TaskQueue(orm, events.bus), events.bus, { workerId: `${k}-w`, concurrency: 1, pollIntervalMs: 60_000, handlers: { [k]: async () => void done.push(Date.now()) } });
    await worker.start();
    await sleep(300); // the worker has found nothing and sleeps; the Redis subscription is in place
    const added = Date.now();
    await queue.add(k, {});
    await until(() => done.length === 1, 5000);
    await worker.stop();
    expect(done[0]! - added).toBeLessThan(2000);
  });

  it('retries a failing task up to maxAttempts, then keeps it failed with the last error', async () => {
    const k = kind();
    const attempts: number[] = [];
    const worker = new Worker(queue, events.bus, {
      workerId: `${k}-w`,
      concurrency: 1,
      pollIntervalMs: 50,
      retryDelayMs: () => 0,
      onError: () => {},
      handlers: { [k]: async (t) => { attempts.push(t.attempts); throw new Error(`boom ${t.attempts}`); } },
    });
    await worker.start();
    const id = await queue.add(k, {}, { maxAttempts: 3 });
    await until(async () => (await db.query('select failed_at from tasks where id = $1', [id])).rows[0]?.failed_at != null);
    await worker.stop();
    expect(attempts).toEqual([1, 2, 3]);
    const { rows } = await db.query('select attempts, last_error, locked_by from tasks where id = $1', [id]);
    expect(rows[0]).toEqual({ attempts: 3, last_error: 'boom 3', locked_by: null });
  });

  it("releases, at start, the tasks a crashed run of the same worker held", async () => {
    const k = kind();
    await queue.add(k, { n: 1 });
    const claimed = await queue.claim(`${k}-w`, [k]); // ...and the process dies before finishing it
    expect(claimed).not.toBeNull();
    expect(await queue.claim(`${k}-other`, [k])).toBeNull();
    const seen: unknown[] = [];
    const restarted = new Worker(queue, events.bus, { workerId: `${k}-w`, concurrency: 1, handlers: { [k]: async (t) => void seen.push(t.payload) } });
    await restarted.start();
    await until(() => seen.length === 1);
    await restarted.stop();
    expect(seen).toEqual([{ n: 1 }]);
  });

  it('takes over a task whose worker stopped renewing its lease, but not one whose lease is renewed', async () => {
    const k = kind();
    await queue.add(k, { n: 1 });
    expect(await queue.claim(`${k}-gone`, [k], 200)).not.toBeNull(); // that instance is never seen again
    expect(await queue.claim(`${k}-other`, [k], 200)).toBeNull();
    await sleep(400);
    const taken = await queue.claim(`${k}-other`, [k], 200);
    expect(taken).toMatchObject({ payload: { n: 1 }, attempts: 2 });
    await queue.complete(taken!, `${k}-other`);

    // A worker that renews keeps its task past the lease.
    const seen: string[] = [];
    const slow = new Worker(queue, events.bus, { workerId: `${k}-slow`, concurrency: 1, leaseMs: 300, handlers: { [k]: async () => { seen.push('slow'); await sleep(1000); } } });
    await queue.add(k, { n: 2 });
    await slow.start();
    await until(() => seen.length === 1);
    await sleep(600);
    expect(await queue.claim(`${k}-thief`, [k], 300)).toBeNull();
    await slow.stop();
  });

  it("keeps a task for the instance it is tied to, but lets anyone take it over once that instance's lease lapsed", async () => {
    const k = kind();
    await queue.add(k, { n: 1 }, { affinity: `${k}-a` });
    expect(await queue.claim(`${k}-b`, [k], 200, `${k}-b`)).toBeNull(); // not b's
    expect(await queue.claim(`${k}-a`, [k], 200, `${k}-a`)).not.toBeNull(); // a takes it, then vanishes
    expect(await queue.claim(`${k}-b`, [k], 200, `${k}-b`)).toBeNull();
    await sleep(400);
    expect(await queue.claim(`${k}-b`, [k], 200, `${k}-b`)).toMatchObject({ payload: { n: 1 }, attempts: 2 });
  });

  it('claims up to as many tasks as asked in one statement, oldest first, and none twice', async () => {
    const k = kind();
    for (let n = 1; n <= 5; n++) await queue.add(k, { n });
    const first = await queue.claimMany(`${k}-w`, [k], 3);
    expect(first.map((t) => t.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(first.every((t) => t.attempts === 1)).toBe(true);
    const rest = await queue.claimMany(`${k}-other`, [k], 3);
    expect(rest.map((t) => t.payload)).toEqual([{ n: 4 }, { n: 5 }]);
    expect(await queue.claimMany(`${k}-w`, [k], 3)).toEqual([]);
  });

  it('does not run a task before its runAt', async () => {
    const k = kind();
    await queue.add(k, {}, { runAt: new Date(Date.now() + 60_000) });
    expect(await queue.claim(`${k}-w`, [k])).toBeNull();
    expect((await queue.nextRunAt([k]))!.getTime()).toBeGreaterThan(Date.now() + 50_000);
  });
});
