// The log store and its followers on real PostgreSQL and Redis: many followers of one log share one
// reader, and each still gets every line once and in order, however late it joins or slowly it reads.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openDatabase, type Orm } from '../../src/db/orm.ts';
import { redisEvents, type Events } from '../../src/events/pubsub.ts';
import type { LogLine } from '../../src/domain/logs/log-line.entity.ts';
import { LogsService, LogWriter } from '../../src/domain/logs/logs.service.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/env.ts';

let orm: Orm;
let events: Events;
let logs: LogsService;
// Another instance: its own tails and its own Redis connections, the same database.
let otherEvents: Events;
let other: LogsService;
// Log ids of their own per run, so that reruns against a kept database never meet old lines.
let nextId = Date.now() % 1_000_000_000;

beforeAll(async () => {
  orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: mkdtempSync(path.join(tmpdir(), 'dockyard-logs-')) });
  events = await redisEvents(TEST_REDIS_URL);
  logs = new LogsService(orm, events.bus);
  otherEvents = await redisEvents(TEST_REDIS_URL);
  other = new LogsService(orm, otherEvents.bus);
});

afterAll(async () => {
  await events?.close();
  await otherEvents?.close();
  await orm?.close();
});

/** A log being written: `finished` flips when the writer is done, as a job's state would. */
function source() {
  const id = ++nextId;
  let finished = false;
  return { id, isFinished: async () => finished, finish: () => void (finished = true) };
}

async function collect(chunks: AsyncGenerator<LogLine[]>, onChunk?: (lines: LogLine[]) => Promise<void>): Promise<LogLine[]> {
  const all: LogLine[] = [];
  for await (const lines of chunks) {
    all.push(...lines);
    await onChunk?.(lines);
  }
  return all;
}

const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('following a log', () => {
  it('gives 40 followers on two instances every line once and in order, reading each stored batch once per instance', async () => {
    const log = source();
    const read = vi.spyOn(other, 'read');
    const append = vi.spyOn(logs, 'append');
    // 20 in the writer's process (lines handed over as they are stored) and 20 on another instance (read on the wake-up).
    const followers = Array.from({ length: 40 }, (_, i) => collect((i % 2 ? logs : other).follow('job', log.id, 0, log.isFinished)));
    const writer = new LogWriter(logs, 'job', log.id, 1, { batchSize: 700 });
    for (let i = 1; i <= 20_000; i++) {
      writer.write('stdout', String(i));
      if (i % 2000 === 0) await new Promise((resolve) => setTimeout(resolve, 20)); // batches of different sizes
    }
    // Joins half-way through the writing, resuming after line 5,000.
    const late = collect(logs.follow('job', log.id, 5000, log.isFinished));
    await writer.flush();
    log.finish();

    for (const lines of await Promise.all(followers)) {
      expect(lines.map((l) => l.seq)).toEqual(numbered(1, 20_000));
      expect(lines.every((l) => l.text === String(l.seq) && l.stream === 'stdout')).toBe(true);
    }
    expect((await late).map((l) => l.seq)).toEqual(numbered(5001, 20_000));
    // On the other instance each follower reads the store when it starts; after that one shared
    // reader reads each batch (a reader per follower would make it 20 reads per batch).
    const batches = append.mock.calls.length;
    expect(batches).toBeGreaterThan(5);
    expect(read.mock.calls.length).toBeLessThan(21 + 3 * batches);
    read.mockRestore();
    append.mockRestore();
  });

  it('a follower that reads slowly drops its backlog and reads it again from the store, missing nothing', async () => {
    const log = source();
    const fast = collect(other.follow('job', log.id, 0, log.isFinished));
    let stall!: () => void;
    const stalled = new Promise<void>((resolve) => (stall = resolve));
    let chunks = 0;
    // Stops after its first chunk until 80,000 lines more (past its backlog cap) have been stored.
    const slow = collect(logs.follow('job', log.id, 0, log.isFinished), async () => {
      if (++chunks === 1) await stalled;
    });
    const writer = new LogWriter(logs, 'job', log.id, 1);
    writer.write('stdout', '1');
    await writer.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 2; i <= 80_000; i++) writer.write('stderr', String(i));
    await writer.flush();
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the shared reader has handed out every batch
    stall();
    log.finish();
    for (const lines of [await fast, await slow]) expect(lines.map((l) => l.seq)).toEqual(numbered(1, 80_000));
  });

  it('ends at once for a finished log after giving what is stored, and gives nothing twice after afterSeq', async () => {
    const log = source();
    await logs.append('build', log.id, 1, [
      { stream: 'stdout', text: 'one' },
      { stream: 'stderr', text: 'two' },
      { stream: 'system', text: 'three' },
    ]);
    log.finish();
    expect((await collect(logs.follow('build', log.id, 0, log.isFinished))).map((l) => [l.seq, l.stream, l.text])).toEqual([
      [1, 'stdout', 'one'],
      [2, 'stderr', 'two'],
      [3, 'system', 'three'],
    ]);
    expect((await collect(logs.follow('build', log.id, 2, log.isFinished))).map((l) => l.text)).toEqual(['three']);
    const at = new Date('2026-01-02T03:04:05.678Z');
    await logs.append('build', log.id, 4, [{ stream: 'stdout', text: 'four', at }]);
    expect((await logs.read('build', log.id, 3, 1))[0]!.at.toISOString()).toBe(at.toISOString());
    expect(await collect(logs.follow('build', log.id, 4, log.isFinished))).toEqual([]);
    // A batch stored again (its first answer was lost) changes nothing and is no error.
    await logs.append('build', log.id, 1, [{ stream: 'stdout', text: 'one' }, { stream: 'stderr', text: 'two' }]);
    expect((await logs.read('build', log.id, 0, 10)).map((l) => l.text)).toEqual(['one', 'two', 'three', 'four']);
  });

  it.each([
    ['in the writing process', () => logs],
    ['on another instance', () => other],
  ])('gives out only the gap-free start of a log: a batch stored before the one ahead of it waits for it (follower %s)', async (_, service) => {
    const log = source();
    const follower = collect(service().follow('job', log.id, 0, log.isFinished));
    await logs.append('job', log.id, 3, [{ stream: 'stdout', text: 'three' }, { stream: 'stdout', text: 'four' }]);
    expect(await logs.read('job', log.id, 0, 10)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 700)); // past the followers' backstop
    await logs.append('job', log.id, 1, [{ stream: 'stdout', text: 'one' }, { stream: 'stdout', text: 'two' }]);
    expect((await logs.read('job', log.id, 0, 10)).map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect((await logs.read('job', log.id, 1, 2)).map((l) => l.seq)).toEqual([2, 3]);
    log.finish();
    expect((await follower).map((l) => l.text)).toEqual(['one', 'two', 'three', 'four']);
  });

  it('a follower that stops early leaves the others running', async () => {
    const log = source();
    const writer = new LogWriter(logs, 'job', log.id, 1);
    const stayer = collect(logs.follow('job', log.id, 0, log.isFinished));
    const leaver = logs.follow('job', log.id, 0, log.isFinished);
    writer.write('stdout', 'a');
    expect(((await leaver.next()).value as LogLine[]).map((l) => l.text)).toEqual(['a']);
    await leaver.return(undefined);
    writer.write('stdout', 'b');
    await writer.flush();
    log.finish();
    expect((await stayer).map((l) => l.text)).toEqual(['a', 'b']);
  });

  it('a writer keeps a batch it could not store, with its numbers, and stores it on the next flush', async () => {
    const log = source();
    const writer = new LogWriter(logs, 'job', log.id, 1);
    const append = vi.spyOn(logs, 'append').mockRejectedValueOnce(new Error('database away')).mockRejectedValueOnce(new Error('database away'));
    writer.write('stdout', 'a');
    writer.write('stdout', 'b');
    writer.write('stderr', 'c');
    await expect(writer.flush()).rejects.toThrow('database away');
    expect(await logs.read('job', log.id, 0, 10)).toEqual([]);
    await writer.flush();
    append.mockRestore();
    expect((await logs.read('job', log.id, 0, 10)).map((l) => [l.seq, l.stream, l.text])).toEqual([
      [1, 'stdout', 'a'],
      [2, 'stdout', 'b'],
      [3, 'stderr', 'c'],
    ]);
  });
});
