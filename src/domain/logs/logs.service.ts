// Log lines of builds (and jobs): stored in PostgreSQL with a gap-free sequence number per source,
// announced on the event bus after they are stored, and followed by readers who replay from the
// database after the last line they saw. Redis only wakes readers; it never carries the lines. Live
// lines reach the followers in one process through one shared reader per log (log-tail.ts).
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Orm } from '../../db/orm.ts';
import { query, run } from '../../db/sql.ts';
import { outageRetryDelay } from '../../db/availability.ts';
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
  /** Where writers spool lines while the database is away (null: kept in memory only, up to its bound). */
  readonly spoolDir: string | null;

  constructor(orm: Orm, bus: EventBus, options: { spoolDir?: string | null } = {}) {
    this.#orm = orm;
    this.#bus = bus;
    this.spoolDir = options.spoolDir ?? null;
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

export interface LogWriterOptions {
  batchSize?: number;
  parallel?: number;
  /** Lines held in memory while inserts fail (the database is away); past it they go to the spool file. */
  memoryBytes?: number;
  /** Where lines past the memory bound are spooled (one file per log, removed once stored); null: they are counted as lost. */
  spoolDir?: string | null;
  /** The most a spool file may hold; past it lines are counted as lost, and the log says so. */
  spoolBytes?: number;
  /** Delay before retry n (1, 2, …) of failed inserts. */
  retryDelayMs?: (attempt: number) => number;
}

const DEFAULT_MEMORY_BYTES = 4 * 2 ** 20;
const DEFAULT_SPOOL_BYTES = 256 * 2 ** 20;

/**
 * Stores lines in order, numbering them as they are written. A line written while the inserts are idle
 * is stored at once; lines written meanwhile are stored together by the next insert, so latency stays
 * one insert and batches grow with the rate. Up to `parallel` inserts run at once (PostgreSQL stores
 * two batches on two cores faster than one after the other); readers only ever see the gap-free start
 * of a log (see `LogsService.read`), so a batch that commits before the one ahead of it stays unseen
 * until that one is stored too.
 *
 * Nothing written is dropped when the database is away: failed batches keep their seqs and are tried
 * again (on a timer, with backoff), lines written meanwhile wait in memory up to a bound and then in a
 * spool file on local disk, and everything is stored in order, each line once (a batch whose insert
 * committed although its answer was lost is recognised by its seqs). `drain` waits for all of it.
 */
export class LogWriter {
  readonly #logs: LogsService;
  readonly #source: LogSource;
  readonly #sourceId: number;
  readonly #batchSize: number;
  readonly #parallel: number;
  readonly #memoryBytes: number;
  readonly #spoolDir: string | null;
  readonly #spoolBytes: number;
  readonly #retryDelayMs: (attempt: number) => number;
  #nextSeq: number;
  #buffer: NewLogLine[] = [];
  /** Batches whose insert failed: tried again (with their seqs) by the retry timer, the next write or drain. */
  #failed: Batch[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** Bytes of the lines held in memory and not yet stored. */
  #heldBytes = 0;
  /** Lines past the memory bound, already numbered, on disk. */
  #spool: { path: string; bytes: number } | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #retries = 0;
  /** The last insert failed (the database is away): past the memory bound, lines go to the spool. */
  #failing = false;
  #failures = 0;
  #lastError: unknown = null;
  /** Lines that could be kept neither in memory nor in the spool. */
  lost = 0;

  constructor(logs: LogsService, source: LogSource, sourceId: number, nextSeq: number, options: LogWriterOptions = {}) {
    this.#logs = logs;
    this.#source = source;
    this.#sourceId = sourceId;
    this.#nextSeq = nextSeq;
    this.#batchSize = options.batchSize ?? 5000;
    this.#parallel = options.parallel ?? 2;
    this.#memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    this.#spoolDir = options.spoolDir === undefined ? logs.spoolDir : options.spoolDir;
    this.#spoolBytes = options.spoolBytes ?? DEFAULT_SPOOL_BYTES;
    this.#retryDelayMs = options.retryDelayMs ?? outageRetryDelay;
  }

  write(stream: LogStream, text: string): void {
    const line = { stream, text: storable(text), at: new Date() };
    // Only while inserts fail: past the memory bound (or once spooling started, to keep the order) lines go to disk.
    if (this.#spool || (this.#failing && this.#heldBytes > this.#memoryBytes)) return this.#toSpool(line);
    this.#buffer.push(line);
    this.#heldBytes += lineBytes(line);
    this.#pump();
  }

  /** Stores everything written so far. Rejects if a batch could not be stored; it is kept and tried again later. */
  async flush(): Promise<void> {
    const failuresBefore = this.#failures;
    this.#pump();
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    if (this.#failures > failuresBefore) throw this.#lastError;
  }

  /**
   * Resolves once every line written so far is stored, however long the database is away; rejects only
   * when `giveUp()` says so (the service is stopping) with lines still unstored.
   */
  async drain(giveUp: () => boolean = () => false): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#loadSpool();
      this.#pump();
      while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
      if (this.#failed.length === 0 && this.#buffer.length === 0 && !this.#spool) return;
      if (giveUp()) throw this.#lastError ?? new Error('the log could not be stored');
      await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs(attempt)));
    }
  }

  /** Starts inserts while there is something to store and room for one more in flight. */
  #pump(): void {
    while (this.#inFlight.size < this.#parallel) {
      const batch = this.#failed.shift() ?? this.#take();
      if (!batch) return;
      const insert = this.#logs.append(this.#source, this.#sourceId, batch.firstSeq, batch.lines).then(
        () => {
          this.#inFlight.delete(insert);
          this.#heldBytes -= batch.lines.reduce((sum, line) => sum + lineBytes(line), 0);
          this.#retries = 0;
          this.#failing = false;
          this.#loadSpool();
          this.#pump();
        },
        (error: unknown) => {
          this.#inFlight.delete(insert);
          this.#failures++;
          this.#failing = true;
          this.#lastError = error;
          this.#failed.push(batch);
          this.#failed.sort((x, y) => x.firstSeq - y.firstSeq);
          // Lines that came in a burst are moved to disk now, not only the ones that come next.
          if (!this.#spool && this.#heldBytes > this.#memoryBytes && this.#buffer.length > 0 && this.#spoolDir !== null) this.#toSpool(this.#buffer.pop()!);
          this.#scheduleRetry();
        },
      );
      this.#inFlight.add(insert);
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer) return;
    this.#retries++;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#pump();
    }, this.#retryDelayMs(this.#retries));
    this.#retryTimer.unref();
  }

  #take(): Batch | null {
    if (this.#buffer.length === 0) return null;
    const lines = this.#buffer.length <= this.#batchSize ? this.#buffer : this.#buffer.slice(0, this.#batchSize);
    this.#buffer = lines === this.#buffer ? [] : this.#buffer.slice(this.#batchSize);
    const batch = { firstSeq: this.#nextSeq, lines };
    this.#nextSeq += lines.length;
    return batch;
  }

  /**
   * Numbers the line and appends it to the spool file (memory is full while the database is away). Lines
   * still waiting in memory unnumbered go first, so that the order stays the order they were written in.
   */
  #toSpool(line: NewLogLine): void {
    if (!this.#spool) {
      if (this.#spoolDir === null) {
        this.lost++;
        return;
      }
      mkdirSync(this.#spoolDir, { recursive: true });
      this.#spool = { path: path.join(this.#spoolDir, `${this.#source}-${this.#sourceId}-${randomBytes(6).toString('hex')}.jsonl`), bytes: 0 };
      const waiting = this.#buffer;
      this.#buffer = [];
      for (const earlier of waiting) {
        this.#heldBytes -= lineBytes(earlier);
        this.#appendToSpool(earlier);
      }
    }
    this.#appendToSpool(line);
  }

  #appendToSpool(line: NewLogLine): void {
    const record = `${JSON.stringify({ seq: this.#nextSeq, stream: line.stream, text: line.text, at: line.at?.getTime() })}\n`;
    if (!this.#spool || this.#spool.bytes + record.length > this.#spoolBytes) {
      this.lost++;
      return;
    }
    try {
      appendFileSync(this.#spool.path, record);
    } catch {
      this.lost++;
      return;
    }
    this.#spool.bytes += record.length;
    this.#nextSeq++;
  }

  /** Once memory is stored, the spooled lines are read back as batches (with their seqs) and the file removed. */
  #loadSpool(): void {
    if (!this.#spool || this.#failed.length > 0 || this.#buffer.length > 0 || this.#inFlight.size > 0) return;
    const { path: file } = this.#spool;
    this.#spool = null;
    const records = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((text) => JSON.parse(text) as { seq: number; stream: LogStream; text: string; at?: number });
    rmSync(file, { force: true });
    for (let i = 0; i < records.length; i += this.#batchSize) {
      const chunk = records.slice(i, i + this.#batchSize);
      const lines = chunk.map((r) => ({ stream: r.stream, text: r.text, ...(r.at ? { at: new Date(r.at) } : {}) }));
      this.#failed.push({ firstSeq: chunk[0]!.seq, lines });
      this.#heldBytes += lines.reduce((sum, line) => sum + lineBytes(line), 0);
    }
  }
}

function lineBytes(line: NewLogLine): number {
  return line.text.length * 2 + 64;
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

  /** Everything stored, however long the database is away (until `giveUp`); lines that were lost meanwhile are said to be. */
  async close(giveUp: () => boolean = () => false): Promise<void> {
    await this.#writer.drain(giveUp);
    if (this.#writer.lost > 0) {
      this.truncated = true;
      this.#writer.write('system', `[${this.#writer.lost} line(s) of output were lost: the database was unavailable for longer than the service could keep them]`);
      await this.#writer.drain(giveUp);
    }
  }
}

/** What PostgreSQL's text and jsonb accept: no NUL, no lone UTF-16 surrogate (each becomes U+FFFD). */
export function storable(text: string): string {
  return text.replaceAll('\0', '\uFFFD').toWellFormed();
}
