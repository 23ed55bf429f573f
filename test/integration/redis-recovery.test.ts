// Redis coming back after an outage: every subscription, including those made while it was down, is
// re-established, and events are delivered through it again (not by the database fallback) promptly.
// Each test runs its own redis-server, kills it and starts it again on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { print } from 'graphql';
import type { ResultOf } from '@graphql-typed-document-node/core';
import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { openDatabase } from '../../src/db/orm.ts';
import { redisEvents, type Events } from '../../src/events/pubsub.ts';
import type { AccountEvent } from '../../src/events/topics.ts';
import { LogsService } from '../../src/domain/logs/logs.service.ts';
import { AccountEventsDocument, CreateApiTokenDocument, LoginDocument, MeDocument } from '../generated/graphql.ts';
import { loggedInUser, PASSWORD } from '../support/accounts.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { startTestServer } from '../support/server.ts';
import { connectWs, execute } from '../support/ws-client.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { TEST_DATABASE_URL } from '../support/env.ts';

/** A redis-server of the test's own, that can be killed and started again on the same port. */
async function privateRedis() {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitForPort(port);
  };
  const kill = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  onTestFinished(kill);
  return { port, url: `redis://127.0.0.1:${port}`, start, kill };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `check` to hold, looking every 100 ms; fails with `what` after `timeoutMs`. */
async function eventually(what: string | (() => string), check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${typeof what === 'string' ? what : what()}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
  return Date.now() - started;
}

/** Values as they arrive from an async iterable, each with the time it arrived. */
function recorder<T>(source: AsyncIterable<T>) {
  const iterator = source[Symbol.asyncIterator]();
  const received: { value: T; at: number }[] = [];
  let waiter = null as (() => void) | null;
  const done = (async () => {
    for (;;) {
      const step = await iterator.next();
      if (step.done) return;
      received.push({ value: step.value, at: performance.now() });
      waiter?.();
    }
  })();
  return {
    received,
    /** Resolves when the iterable ends. */
    done,
    /** Resolves with the first received value that matches, or null after `timeoutMs`. */
    async waitFor(match: (value: T) => boolean, timeoutMs: number): Promise<{ value: T; at: number } | null> {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const found = received.find((item) => match(item.value));
        if (found) return found;
        const left = deadline - performance.now();
        if (left <= 0) return null;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiter = () => (clearTimeout(timer), resolve());
        });
      }
    },
    /** Ends it (an async generator only once it yields again). */
    stop: () => iterator.return?.(),
  };
}

const percentile = (values: number[], p: number) => [...values].sort((x, y) => x - y)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;

function accountEvent(subjectId: string): AccountEvent {
  return { kind: 'API_TOKEN_CREATED', userId: '0', subjectId, at: new Date().toISOString() };
}

describe('Redis coming back after an outage', () => {
  it('re-subscribes every channel that has listeners, also those subscribed while it was down, delivers each event once, and wakes log followers through it again', async () => {
    const redis = await privateRedis();
    const outageLines: string[] = [];
    const consoleError = console.error;
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith('events:')) outageLines.push(args[0]);
      else consoleError(...args);
    });
    onTestFinished(() => spy.mockRestore());
    const orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: mkdtempSync(path.join(tmpdir(), 'dockyard-redis-recovery-')) });
    onTestFinished(() => orm.close());
    const opened: Events[] = [];
    onTestFinished(() => Promise.all(opened.map((events) => events.close())).then(() => {}));
    // Instance A subscribes and follows logs; instance B (its own connections, the same database) publishes and writes.
    const a = await redisEvents(redis.url);
    opened.push(a);
    const b = await redisEvents(redis.url);
    opened.push(b);
    const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    // A third instance that shuts down during the outage: it must stop reconnecting.
    const c = await redisEvents(redis.url);
    opened.push(c);
    const onC = recorder(c.bus.subscribe('account', `c-${run}`));
    const logsA = new LogsService(orm, a.bus);
    const logsB = new LogsService(orm, b.bus);
    // Log ids of this run's own, away from the ones logs.test.ts uses.
    const logBefore = 1_500_000_000 + Math.floor(Math.random() * 500_000_000);
    const logDuring = logBefore + 1;

    // Subscribed while Redis is up: one that stays, and one whose subscriber leaves during the outage.
    const before = recorder(a.bus.subscribe('account', `before-${run}`));
    const leaving = recorder(a.bus.subscribe('account', `leaving-${run}`));
    let logsFinished = false;
    const followBefore = recorder(logsA.follow('job', logBefore, 0, async () => logsFinished));
    await eventually('A subscribed before the outage', async () => {
      b.bus.publish('account', `before-${run}`, accountEvent('warm-up'));
      return (await before.waitFor((event) => event.subjectId === 'warm-up', 200)) !== null;
    });

    await redis.kill();
    // While Redis is down: two subscribers of one new channel, a log follower, and the leaving one goes.
    const during1 = recorder(a.bus.subscribe('account', `during-${run}`));
    const during2 = recorder(a.bus.subscribe('account', `during-${run}`));
    const followDuring = recorder(logsA.follow('job', logDuring, 0, async () => logsFinished));
    await leaving.stop();
    b.bus.publish('account', `during-${run}`, accountEvent('lost')); // fails quietly: Redis keeps nothing anyway
    await sleep(3000);
    const down = await a.ping();
    expect(down).toBe(false);
    const closing = Date.now();
    await c.close();
    expect(Date.now() - closing).toBeLessThan(1000);
    await onC.stop();

    await redis.start();
    const restarted = Date.now();
    const admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    onTestFinished(() => void admin.disconnect());
    const subscribers = async (channel: string) => {
      const [, count] = (await admin.pubsub('NUMSUB', channel)) as [string, number];
      return Number(count);
    };
    // Exactly A's subscribe connection on each channel with listeners, none on the one that was left.
    const channels = [`account:before-${run}`, `account:during-${run}`, `logAppended:job:${logBefore}`, `logAppended:job:${logDuring}`];
    let counts: number[] = [];
    await eventually(
      () => `every channel with listeners re-subscribed (subscribers: ${channels.map((channel, i) => `${channel} ${counts[i]}`).join(', ')})`,
      async () => (counts = await Promise.all(channels.map(subscribers))).every((n) => n === 1),
    );
    const recoveredMs = Date.now() - restarted;
    expect(await subscribers(`account:leaving-${run}`)).toBe(0);
    expect(await subscribers(`account:c-${run}`)).toBe(0);
    await eventually('B publishes again', () => b.ping());
    await eventually('A publishes again', () => a.ping());

    // Events from B reach every subscriber through Redis, each once.
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const subjectId = `after-${i}`;
      const sent = performance.now();
      b.bus.publish('account', `during-${run}`, accountEvent(subjectId));
      b.bus.publish('account', `before-${run}`, accountEvent(subjectId));
      for (const subscriber of [during1, during2, before]) {
        const got = await subscriber.waitFor((event) => event.subjectId === subjectId, 5000);
        expect(got, `event ${subjectId}`).not.toBeNull();
        latencies.push(got!.at - sent);
      }
    }
    await sleep(500);
    for (const subscriber of [during1, during2]) expect(subscriber.received.map((item) => item.value.subjectId)).toEqual(Array.from({ length: 10 }, (_, i) => `after-${i}`));
    expect(before.received.map((item) => item.value.subjectId).filter((id) => id.startsWith('after-'))).toEqual(Array.from({ length: 10 }, (_, i) => `after-${i}`));
    expect(Math.max(...latencies)).toBeLessThan(1000);

    // Lines B stores reach A's followers on B's event, not on the readers' look at the database every
    // 500 ms: with that look alone the median wait is hundreds of milliseconds (450 ms before the fix).
    const logLatency: Record<string, number[]> = {};
    for (const [name, id, follow] of [['before', logBefore, followBefore], ['during', logDuring, followDuring]] as const) {
      const waits: number[] = (logLatency[name] = []);
      for (let seq = 1; seq <= 40; seq++) {
        await sleep(20 + Math.random() * 60);
        await logsB.append('job', id, seq, [{ stream: 'stdout', text: String(seq) }]);
        const stored = performance.now();
        const got = await follow.waitFor((lines) => lines.some((line) => line.seq === seq), 5000);
        expect(got, `line ${seq} of the ${name} log`).not.toBeNull();
        waits.push(Math.max(0, got!.at - stored));
      }
    }
    console.info(
      `redis-recovery: re-subscribed ${recoveredMs} ms after Redis started; events p50 ${percentile(latencies, 50).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms;` +
        ` log lines p50 before ${percentile(logLatency.before!, 50).toFixed(1)} ms, during ${percentile(logLatency.during!, 50).toFixed(1)} ms`,
    );
    expect(percentile(logLatency.before!, 50)).toBeLessThan(100);
    expect(percentile(logLatency.during!, 50)).toBeLessThan(100);

    // Seconds after Redis came back: A's and B's two connections each, and this one; none of C's (its
    // clients would have tried again within 2 s).
    expect(String(await admin.client('LIST')).trim().split('\n')).toHaveLength(5);

    // A subscriber leaving now unsubscribes its channel once the last one is gone.
    await during1.stop();
    expect(await subscribers(`account:during-${run}`)).toBe(1);
    await during2.stop();
    await eventually('the channel left by its last subscriber is unsubscribed', async () => (await subscribers(`account:during-${run}`)) === 0, 5000);
    await before.stop();
    logsFinished = true;
    await Promise.all([followBefore.done, followDuring.done]);
    await eventually('the finished logs are unsubscribed', async () => (await Promise.all(channels.map(subscribers))).every((n) => n === 0), 5000);

    // One line per instance when Redis went away (C's too) and one when it was back (A's and B's), not
    // one per failed call.
    expect(outageLines.filter((line) => / failing \(/.test(line))).toHaveLength(3);
    expect(outageLines.filter((line) => /: working again$/.test(line))).toHaveLength(2);
    expect(outageLines).toHaveLength(5);
  }, 120_000);

  it('gives a GraphQL subscription made during the outage events from another instance within a second once Redis is back', async () => {
    const redis = await privateRedis();
    const a = await startTestServer({ REDIS_URL: redis.url });
    const b = await startTestServer({ REDIS_URL: redis.url });
    // One account A knows before the outage; the other has only ever been seen by B, so that A has no
    // Redis channel for it until the subscription made during the outage asks for one.
    const early = await loggedInUser(a.graphqlUrl);
    const earlyOnB = new GraphqlClient(b.graphqlUrl);
    expect((await earlyOnB.request(LoginDocument, { login: early.login, password: PASSWORD })).errors).toBeUndefined();
    const late = await loggedInUser(b.graphqlUrl);

    const accountEvents = (cookie: string | undefined) => {
      const ws = connectWs(a.wsUrl, { cookie }).client;
      onTestFinished(() => ws.dispose());
      return { ws, events: recorder(ws.iterate<ResultOf<typeof AccountEventsDocument>>({ query: print(AccountEventsDocument) })) };
    };
    const subjectIs = (id: string) => (result: { data?: ResultOf<typeof AccountEventsDocument> | null }) => result.data?.accountEvents.subjectId === id;
    const createToken = async (client: GraphqlClient, name: string) => {
      const made = await client.request(CreateApiTokenDocument, { name });
      expect(made.errors).toBeUndefined();
      return made.data!.createApiToken.apiToken.id;
    };

    const before = accountEvents(early.client.cookieHeader);
    await eventually('the subscription made before the outage gets events', async () =>
      (await before.events.waitFor(subjectIs(await createToken(earlyOnB, 'warm-up')), 250)) !== null,
    );

    await redis.kill();
    const during = accountEvents(late.client.cookieHeader);
    // The socket handles its messages in order: once this answers, the subscription has started.
    expect((await execute(during.ws, MeDocument)).data!.me.login).toBe(late.login);
    // Long enough for the client to give up on what it queued while disconnected (as in any real outage).
    await sleep(3000);

    await redis.start();
    // The first event through Redis: publishers and subscribers reconnect on their own (back-off up to 2 s).
    const recoveredMs = await eventually('an event from B on the subscription made during the outage, after Redis is back', async () =>
      (await during.events.waitFor(subjectIs(await createToken(late.client, 'recovery')), 500)) !== null,
    );

    // From now on every event arrives promptly, on both subscriptions (they have no database fallback:
    // an event that Redis does not carry never arrives).
    const latencies: number[] = [];
    const afterAnswer: number[] = [];
    const expected = { before: [] as string[], during: [] as string[] };
    for (let i = 0; i < 5; i++) {
      for (const [name, client] of [['during', late.client], ['before', earlyOnB]] as const) {
        const started = performance.now();
        const id = await createToken(client, `after ${i}`);
        const answered = performance.now();
        expected[name].push(id);
        const got = await (name === 'during' ? during : before).events.waitFor(subjectIs(id), 5000);
        expect(got, `the event of token ${i} on the subscription made ${name} the outage`).not.toBeNull();
        latencies.push(got!.at - started);
        afterAnswer.push(got!.at - answered);
      }
    }
    await sleep(500);
    // Each event once.
    for (const [name, { events }] of [['during', during], ['before', before]] as const) {
      const ids = events.received.map((item) => item.value.data?.accountEvents.subjectId);
      expect(ids.filter((id) => expected[name].includes(id!))).toEqual(expected[name]);
      expect(new Set(ids).size).toBe(ids.length);
    }
    console.info(
      `redis-recovery: the GraphQL subscription made during the outage got its first event ${recoveredMs} ms after Redis started;` +
        ` then p50 ${percentile(latencies, 50).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (from the mutation on B to the event on A)`,
    );
    // Within a second of B's answer (the event is published before it answers).
    expect(Math.max(...afterAnswer)).toBeLessThan(1000);
    await Promise.all([before.events.stop(), during.events.stop()]);
  }, 120_000);
});
