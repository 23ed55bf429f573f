// The log writer while the database is away (a fake store that fails, then works): nothing written is
// dropped, lines wait in memory and then in a spool file, and are stored in order, each line once.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CappedLog, LogWriter, type LogsService, type NewLogLine } from '../../src/domain/logs/logs.service.ts';

/** A store whose inserts fail while `down`; a batch whose answer is lost may still have been stored. */
function flakyStore(spoolDir: string | null) {
  const stored = new Map<number, string>();
  const state = { down: false, commitThenFail: false, calls: 0 };
  const store = {
    spoolDir,
    append: async (_source: string, _id: number, firstSeq: number, lines: NewLogLine[]) => {
      state.calls++;
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (state.commitThenFail) {
        // Stored, but the answer never arrived (the connection broke after the commit).
        lines.forEach((line, i) => stored.set(firstSeq + i, line.text));
        state.commitThenFail = false;
        throw Object.assign(new Error('Connection terminated unexpectedly'), {});
      }
      if (state.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      for (const [i, line] of lines.entries()) {
        if (stored.has(firstSeq + i)) return; // the unique (source, id, seq) key: stored by an earlier attempt
        stored.set(firstSeq + i, line.text);
      }
    },
  };
  return { store: store as unknown as LogsService, stored, state };
}

const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

describe('LogWriter during a database outage', () => {
  it('keeps every line in memory and then in a spool file, and stores them in order, each once, when the database returns', async () => {
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'dockyard-spool-'));
    const { store, stored, state } = flakyStore(spoolDir);
    const writer = new LogWriter(store, 'job', 1, 1, { memoryBytes: 2000, batchSize: 7, retryDelayMs: () => 5 });
    for (const text of texts(1, 10)) writer.write('stdout', text);
    await writer.flush();
    state.down = true;
    for (const text of texts(11, 400)) writer.write('stdout', text);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(readdirSync(spoolDir)).toHaveLength(1); // past 2,000 bytes in memory, lines went to disk
    state.commitThenFail = true;
    state.down = false;
    for (const text of texts(401, 420)) writer.write('stderr', text);
    await writer.drain();
    expect([...stored.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 420 }, (_, i) => i + 1));
    expect([...stored.entries()].sort(([a], [b]) => a - b).map(([, text]) => text)).toEqual(texts(1, 420));
    expect(readdirSync(spoolDir)).toEqual([]);
    expect(writer.lost).toBe(0);
  });

  it('retries on its own (no further write needed) and drain waits as long as the outage lasts', async () => {
    const { store, stored, state } = flakyStore(null);
    const writer = new LogWriter(store, 'job', 2, 1, { retryDelayMs: () => 10 });
    state.down = true;
    writer.write('stdout', 'only line');
    const drained = writer.drain();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stored.size).toBe(0);
    const callsDuringOutage = state.calls;
    state.down = false;
    await drained;
    expect(stored.get(1)).toBe('only line');
    expect(callsDuringOutage).toBeGreaterThan(3);
  });

  it('says in a closing line how many lines were lost when neither memory nor spool could keep them, and marks the log truncated', async () => {
    const { store, stored, state } = flakyStore(null); // no spool directory
    const log = new CappedLog(new LogWriter(store, 'job', 3, 1, { memoryBytes: 500, retryDelayMs: () => 5 }), 10 * 2 ** 20);
    state.down = true;
    for (const text of texts(1, 5)) log.write('stdout', text);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the inserts have failed
    for (const text of texts(6, 50)) log.write('stdout', text);
    await new Promise((resolve) => setTimeout(resolve, 20));
    state.down = false;
    await log.close();
    expect(log.truncated).toBe(true);
    const lines = [...stored.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
    expect(lines.at(-1)).toMatch(/^\[\d+ line\(s\) of output were lost: the database was unavailable/);
    // What was accepted before the bound is all there, in order, and the seqs have no gap.
    expect(lines.slice(0, -1)).toEqual(texts(1, lines.length - 1));
    expect([...stored.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: lines.length }, (_, i) => i + 1));
  });
});
