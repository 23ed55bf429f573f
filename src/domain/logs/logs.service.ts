// Log lines of builds (and jobs): stored in PostgreSQL with a gap-free sequence number per source,
// announced on the event bus after they are stored, and followed by readers who replay from the
// database after the last line they saw. Redis only wakes readers; it never carries the lines. Live
// lines reach the followers in one process through one shared reader per log (log-tail.ts).
import { readFileSync } from 'node:fs';
import type { Orm } from '../../db/orm.ts';
import { query, run } from '../../db/sql.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { LogLine, LogSource, LogStream } from './log-line.entity.ts';
import { LogTail, READ_BATCH } from './log-tail.ts';

const sql = (name: string) => readFileSync(new URL(`./sql/${name}.sql`, import.meta.url), 'utf8');
const APPEND = sql('append-lines');
const READ = sql('read-lines');
const LAST_SEQ = sql('last-seq');

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

  /** Stores lines numbered from `firstSeq`, then wakes readers. */
  async append(source: LogSource, sourceId: number, firstSeq: number, lines: NewLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const rows = lines.map((line, i) => ({ seq: firstSeq + i, stream: line.stream, text: line.text, at: line.at ?? new Date() }));
    await run(this.#orm, APPEND, [source, sourceId, JSON.stringify(rows)]);
    this.#bus.publish('logAppended', logKey(source, sourceId), { lastSeq: firstSeq + lines.length - 1 });
  }

  /** Stored lines with seq > afterSeq, in order. */
  async read(source: LogSource, sourceId: number, afterSeq: number, limit: number): Promise<LogLine[]> {
    const rows = await query<Pick<LogLine, 'seq' | 'stream' | 'text'> & { at: Date | string }>(this.#orm, READ, [source, sourceId, afterSeq, limit]);
    return rows.map((row) => ({ source, sourceId, seq: row.seq, stream: row.stream, text: row.text, at: new Date(row.at) }));
  }

  async count(source: LogSource, sourceId: number): Promise<number> {
    const [row] = await query<{ count: string }>(this.#orm, 'select count(*) as count from log_lines where source = $1 and source_id = $2', [source, sourceId]);
    return Number(row?.count ?? 0);
  }

  async remove(source: LogSource, sourceId: number): Promise<void> {
    await run(this.#orm, 'delete from log_lines where source = $1 and source_id = $2', [source, sourceId]);
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
    let last = afterSeq;
    const self = this;
    /** Everything stored after `last`: the first replay, a gap, a dropped backlog, and the rest at the end. */
    async function* stored(): AsyncGenerator<LogLine[]> {
      for (;;) {
        const lines = await self.read(source, sourceId, last, READ_BATCH);
        if (lines.length > 0) {
          last = lines.at(-1)!.seq;
          yield lines;
        }
        if (lines.length < READ_BATCH) return;
      }
    }
    try {
      yield* stored();
      for (;;) {
        const event = await follower.next();
        if (event.kind === 'end') return yield* stored();
        if (event.kind === 'behind') {
          yield* stored();
          continue;
        }
        const first = event.lines[0]!.seq;
        if (first > last + 1) yield* stored();
        // A batch holds consecutive lines: skip the ones already given.
        const fresh = first > last ? event.lines : event.lines.slice(last + 1 - first);
        if (fresh.length === 0) continue;
        last = fresh.at(-1)!.seq;
        yield fresh;
      }
    } finally {
      tail.leave(follower);
    }
  }

  async #lastSeq(source: LogSource, sourceId: number): Promise<number> {
    const [row] = await query<{ seq: number | null }>(this.#orm, LAST_SEQ, [source, sourceId]);
    return row?.seq ?? 0;
  }
}

/**
 * Stores lines in order, numbering them. A line written while nothing is being stored is stored at
 * once; lines written while an insert runs are stored together by the next one (at most one waits),
 * so latency stays one insert and batches grow with the rate.
 */
export class LogWriter {
  readonly #logs: LogsService;
  readonly #source: LogSource;
  readonly #sourceId: number;
  #nextSeq: number;
  #buffer: NewLogLine[] = [];
  #flushing: Promise<void> = Promise.resolve();
  /** A flush is queued behind the one in flight and will take whatever is buffered. */
  #queued = false;
  readonly #batchSize: number;

  constructor(logs: LogsService, source: LogSource, sourceId: number, nextSeq: number, options: { batchSize?: number } = {}) {
    this.#logs = logs;
    this.#source = source;
    this.#sourceId = sourceId;
    this.#nextSeq = nextSeq;
    this.#batchSize = options.batchSize ?? 5000;
  }

  write(stream: LogStream, text: string): void {
    this.#buffer.push({ stream, text: storable(text), at: new Date() });
    if (!this.#queued) void this.flush().catch(() => {});
  }

  /** Stores what is buffered. A failed batch stays buffered and is tried again by the next flush. */
  flush(): Promise<void> {
    this.#queued = true;
    this.#flushing = this.#flushing.catch(() => {}).then(async () => {
      this.#queued = false;
      while (this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, this.#batchSize);
        try {
          await this.#logs.append(this.#source, this.#sourceId, this.#nextSeq, batch);
          this.#nextSeq += batch.length;
        } catch (error) {
          this.#buffer = [...batch, ...this.#buffer];
          throw error;
        }
      }
    });
    return this.#flushing;
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
