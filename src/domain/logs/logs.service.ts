// Log lines of builds (and jobs): stored in PostgreSQL with a gap-free sequence number per source,
// announced on the event bus after they are stored, and followed by readers who replay from the
// database after the last line they saw. Redis only wakes readers; it never carries the lines. Live
// lines reach the followers in one process through one shared reader per log (log-tail.ts).
import { readFileSync } from 'node:fs';
import type { Orm } from '../../db/orm.ts';
import { query, run } from '../../db/sql.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { LogLine, LogSource, LogStream } from './log-line.entity.ts';
import { type Follower, LogTail, READ_BATCH } from './log-tail.ts';

const sql = (name: string) => readFileSync(new URL(`./sql/${name}.sql`, import.meta.url), 'utf8');
const APPEND = sql('append-lines');
const READ = sql('read-lines');
const LAST_SEQ = sql('last-seq');
const UNIQUE_VIOLATION = '23505';

export interface NewLogLine {
  stream: LogStream;
  text: string;
  at?: Date;
}

export const logKey = (source: LogSource, sourceId: number): string => `${source}:${sourceId}`;

export class LogsService {
  readonly #orm: Orm;
  readonly #bus: EventBus;
  readonly #tails = new Map<string, LogTail>();

  constructor(orm: Orm, bus: EventBus) {
    this.#orm = orm;
    this.#bus = bus;
  }

  /** The next sequence number to use for this source (1 for a new one). */
  async nextSeq(source: LogSource, sourceId: number): Promise<number> {
    return (await this.#lastSeq(source, sourceId)) + 1;
  }

  /**
   * One system line after the last stored one: the closing line of a job or build that its own runner
   * could not end (its instance crashed or restarted), so that every log that did not succeed says why.
   */
  async appendClosingLine(source: LogSource, sourceId: number, text: string): Promise<void> {
    await this.append(source, sourceId, await this.nextSeq(source, sourceId), [{ stream: 'system', text: storable(text) }]);
  }

  /** Stores lines numbered from `firstSeq`, then wakes readers. */
  async append(source: LogSource, sourceId: number, firstSeq: number, lines: NewLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const now = Date.now();
    const seqs = lines.map((_, i) => firstSeq + i);
    // Times travel as epoch milliseconds: no date string to format here and parse in the database.
    try {
      await run(this.#orm, APPEND, [source, sourceId, seqs, lines.map((l) => l.stream), lines.map((l) => l.text), lines.map((l) => l.at?.getTime() ?? now)]);
    } catch (error) {
      // A unique violation: this batch was stored by an earlier attempt whose answer was lost.
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
    }
    // Followers in this process get the lines now; other processes read them when the event wakes them.
    this.#tails.get(logKey(source, sourceId))?.offer(lines.map((line, i) => ({ source, sourceId, seq: firstSeq + i, stream: line.stream, text: line.text, at: line.at ?? new Date(now) })));
    this.#bus.publish('logAppended', logKey(source, sourceId), { lastSeq: firstSeq + lines.length - 1 });
  }

  /**
   * Stored lines with seq > afterSeq, in order, up to the first gap: a batch stored before the one
   * ahead of it (LogWriter runs two inserts at once) is not given out until that one is stored, so a
   * reader that resumes after the last seq it saw never skips a line.
   */
  async read(source: LogSource, sourceId: number, afterSeq: number, limit: number): Promise<LogLine[]> {
    const rows = await query<Pick<LogLine, 'seq' | 'stream' | 'text'> & { at: Date | string }>(this.#orm, READ, [source, sourceId, afterSeq, limit]);
    const lines: LogLine[] = [];
    for (const row of rows) {
      if (row.seq !== afterSeq + lines.length + 1) break;
      lines.push({ source, sourceId, seq: row.seq, stream: row.stream, text: row.text, at: new Date(row.at) });
    }
    return lines;
  }

  /**
   * Every line after `afterSeq`, in batches of consecutive lines: first what is stored, then what is
   * stored next as it is stored, each line exactly once and in order; ends once `isFinished()` is true
   * and every line has been given.
   */
  async *follow(source: LogSource, sourceId: number, afterSeq: number, isFinished: () => Promise<boolean>): AsyncGenerator<LogLine[]> {
    const key = logKey(source, sourceId);
    // Joined before reading the store, so that a batch stored in between reaches us through the tail.
    let tail = this.#tails.get(key);
    if (!tail) {
      tail = new LogTail(this.#bus, key, { read: (after, limit) => this.read(source, sourceId, after, limit), lastSeq: () => this.#lastSeq(source, sourceId), isFinished }, () => {
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      });
      this.#tails.set(key, tail);
    }
    const follower = tail.join();
    follower.given = afterSeq;
    try {
      yield* this.#stored(source, sourceId, follower);
      for (;;) {
        const event = await follower.next();
        if (event.kind === 'end') return yield* this.#stored(source, sourceId, follower);
        if (event.kind === 'behind') {
          yield* this.#stored(source, sourceId, follower);
          continue;
        }
        const first = event.lines[0]!.seq;
        if (first > follower.given + 1) yield* this.#stored(source, sourceId, follower);
        // A batch holds consecutive lines: skip the ones already given.
        const fresh = first > follower.given ? event.lines : event.lines.slice(follower.given + 1 - first);
        if (fresh.length === 0) continue;
        follower.given = fresh.at(-1)!.seq;
        yield fresh;
      }
    } finally {
      tail.leave(follower);
    }
  }

  /** Everything stored after what `follower` gave: the first replay, a gap, a dropped backlog, and the rest at the end. */
  async *#stored(source: LogSource, sourceId: number, follower: Follower): AsyncGenerator<LogLine[]> {
    for (;;) {
      const lines = await this.read(source, sourceId, follower.given, READ_BATCH);
      if (lines.length > 0) {
        follower.given = lines.at(-1)!.seq;
        yield lines;
      }
      if (lines.length < READ_BATCH) return;
    }
  }

  async #lastSeq(source: LogSource, sourceId: number): Promise<number> {
    const [row] = await query<{ seq: number | null }>(this.#orm, LAST_SEQ, [source, sourceId]);
    return row?.seq ?? 0;
  }
}

/** A numbered batch: its lines get the seqs firstSeq, firstSeq + 1, … whether it is stored now or on a retry. */
interface Batch {
  firstSeq: number;
  lines: NewLogLine[];
}

/**
 * Stores lines in order, numbering them as they are written. A line written while the inserts are idle
 * is stored at once; lines written meanwhile are stored together by the next insert, so latency stays
 * one insert and batches grow with the rate. Up to `parallel` inserts run at once (PostgreSQL stores
 * two batches on two cores faster than one after the other); readers only ever see the gap-free start
 * of a log (see `LogsService.read`), so a batch that commits before the one ahead of it stays unseen
 * until that one is stored too.
 */
export class LogWriter {
  readonly #logs: LogsService;
  readonly #source: LogSource;
  readonly #sourceId: number;
  readonly #batchSize: number;
  readonly #parallel: number;
  #nextSeq: number;
  #buffer: NewLogLine[] = [];
  /** Batches whose insert failed: tried again (with their seqs) by the next write or flush. */
  #failed: Batch[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #failures = 0;
  #lastError: unknown = null;

  constructor(logs: LogsService, source: LogSource, sourceId: number, nextSeq: number, options: { batchSize?: number; parallel?: number } = {}) {
    this.#logs = logs;
    this.#source = source;
    this.#sourceId = sourceId;
    this.#nextSeq = nextSeq;
    this.#batchSize = options.batchSize ?? 5000;
    this.#parallel = options.parallel ?? 2;
  }

  write(stream: LogStream, text: string): void {
    this.#buffer.push({ stream, text: storable(text), at: new Date() });
    this.#pump();
  }

  /** Stores everything written so far. Rejects if a batch could not be stored; it is kept and tried again by the next write or flush. */
  async flush(): Promise<void> {
    const failuresBefore = this.#failures;
    this.#pump();
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    if (this.#failures > failuresBefore) throw this.#lastError;
  }

  /** Starts inserts while there is something to store and room for one more in flight. */
  #pump(): void {
    while (this.#inFlight.size < this.#parallel) {
      const batch = this.#failed.shift() ?? this.#take();
      if (!batch) return;
      const insert = this.#logs.append(this.#source, this.#sourceId, batch.firstSeq, batch.lines).then(
        () => {
          this.#inFlight.delete(insert);
          this.#pump();
        },
        (error: unknown) => {
          this.#inFlight.delete(insert);
          this.#failures++;
          this.#lastError = error;
          this.#failed.push(batch);
          this.#failed.sort((x, y) => x.firstSeq - y.firstSeq);
        },
      );
      this.#inFlight.add(insert);
    }
  }

  #take(): Batch | null {
    if (this.#buffer.length === 0) return null;
    const lines = this.#buffer.length <= this.#batchSize ? this.#buffer : this.#buffer.slice(0, this.#batchSize);
    this.#buffer = lines === this.#buffer ? [] : this.#buffer.slice(this.#batchSize);
    const batch = { firstSeq: this.#nextSeq, lines };
    this.#nextSeq += lines.length;
    return batch;
  }
}

/** A log with a size cap: past it the build or job runs on, one line says the rest was not kept, and `truncated` is set. */
export class CappedLog {
  readonly #writer: LogWriter;
  readonly #maxBytes: number;
  #bytes = 0;
  truncated = false;

  constructor(writer: LogWriter, maxBytes: number) {
    this.#writer = writer;
    this.#maxBytes = maxBytes;
  }

  write(stream: 'stdout' | 'stderr', text: string): void {
    if (this.truncated) return;
    this.#bytes += Buffer.byteLength(text) + 1;
    if (this.#bytes > this.#maxBytes) {
      this.truncated = true;
      this.#writer.write('system', `[log truncated: more than ${this.#maxBytes} bytes of output; the rest is not kept]`);
      return;
    }
    this.#writer.write(stream, text);
  }

  system(text: string): void {
    this.#writer.write('system', text);
  }

  close(): Promise<void> {
    return this.#writer.flush();
  }
}

/** What PostgreSQL's text and jsonb accept: no NUL, no lone UTF-16 surrogate (each becomes U+FFFD). */
export function storable(text: string): string {
  return text.replaceAll('\0', '\uFFFD').toWellFormed();
}
