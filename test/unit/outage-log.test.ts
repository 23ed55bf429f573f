// A dependency that fails on every poll is logged once when it starts failing and once when it works
// again (issue 11: a database outage wrote a stack trace per failed claim, one a second).
import { describe, expect, it } from 'vitest';
import { Worker } from '../../src/scheduler/worker.ts';
import type { TaskQueue } from '../../src/scheduler/queue.ts';
import type { EventBus } from '../../src/events/pubsub.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('scheduler outages', () => {
  it('logs one line when claims start failing and one when they work again, none per failed poll', async () => {
    const lines: string[] = [];
    const errors: unknown[] = [];
    let down = true;
    let claims = 0;
    // A queue whose database is away until `down` is false (the only calls a worker makes while idle).
    const queue = {
      origin: 'test',
      releaseWorker: async () => {},
      onLocalWake: () => () => {},
      renewLeases: async () => {},
      claimMany: async () => {
        claims++;
        if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
        return [];
      },
    } as unknown as TaskQueue;
    const silentBus = { subscribe: () => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}), return: async () => ({ done: true, value: undefined }) }) }) } as unknown as EventBus;
    const worker = new Worker(queue, silentBus, { workerId: 'w1', concurrency: 1, pollIntervalMs: 5, handlers: { k: async () => {} }, onError: (e) => errors.push(e), logOutage: (line) => lines.push(line) });
    await worker.start();
    await sleep(150);
    const failedPolls = claims;
    down = false;
    await sleep(60);
    down = true;
    await sleep(60);
    await worker.stop();
    expect(failedPolls).toBeGreaterThan(5);
    expect(lines).toEqual([
      'scheduler w1: claiming tasks: failing (connect ECONNREFUSED 127.0.0.1:5432); retrying, next line when it works again',
      'scheduler w1: claiming tasks: working again',
      'scheduler w1: claiming tasks: failing (connect ECONNREFUSED 127.0.0.1:5432); retrying, next line when it works again',
    ]);
    expect(errors).toEqual([]);
  });
});
