// Log lines of builds (and jobs): stored in PostgreSQL with a gap-free sequence number per source,
// announced on the event bus after they are stored, and followed by readers who replay from the
// database after the last line they saw. Redis only wakes readers; it never carries the lines.
import { readFileSync } from 'node:fs';
import type { Orm } from '../../db/orm.ts';
import type { EventBus } from '../../events/pubsub.ts';
import { LogLine, type LogSource, type LogStream } from './log-line.entity.ts';

const APPEND = readFileSync(new URL('./sql/append-lines.sql', import.meta.url), 'utf8');
/** A reader that missed a wake-up (Redis keeps nothing) looks again after this long. */
const FOLLOW_BACKSTOP_MS = 500;
const READ_BATCH = 1000;

export interface NewLogLine {
  stream: LogStream;
  text: string;
  at?: Date;
}

export const logKey = (source: LogSource, sourceId: number): string => `${source}:${sourceId}`;

export class LogsService {
  readonly #orm: Orm;
  readonly #bus: EventBus;

  constructor(orm: Orm, bus: EventBus) {
    this.#orm = orm;
    this.#bus = bus;
  }

  /** The next sequence number to use for this source (1 for a new one). */
  async nextSeq(source: LogSource, sourceId: number): Promise<number> {
    const [row] = await this.#orm.em
      .fork()
      .execute<{ seq: number | null }[]>('select max(seq) as seq from log_lines where source = ? and source_id = ?', [source, sourceId]);
    return (row?.seq ?? 0) + 1;
  }

  /** Stores lines numbered from `firstSeq`, then wakes readers. */
  async append(source: LogSource, sourceId: number, firstSeq: number, lines: NewLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const rows = lines.map((line, i) => ({ seq: firstSeq + i, stream: line.stream, text: line.text, at: (line.at ?? new Date()).toISOString() }));
    await this.#orm.em.fork().execute(APPEND, [source, sourceId, JSON.stringify(rows)], 'run');
    this.#bus.publish('logAppended', logKey(source, sourceId), { lastSeq: firstSeq + lines.length - 1 });
  }

  /** Stored lines with seq > afterSeq, in order. */
  async read(source: LogSource, sourceId: number, afterSeq: number, limit: number): Promise<LogLine[]> {
    return this.#orm.em.fork().find(LogLine, { source, sourceId, seq: { $gt: afterSeq } }, { orderBy: { seq: 'asc' }, limit });
  }

  async count(source: LogSource, sourceId: number): Promise<number> {
    return this.#orm.em.fork().count(LogLine, { source, sourceId });
  }

  async remove(source: LogSource, sourceId: number): Promise<void> {
    await this.#orm.em.fork().nativeDelete(LogLine, { source, sourceId });
  }

  /**
   * Every line after `afterSeq`: first what is stored, then each new line as it is stored, each exactly
   * once and in order; ends once `isFinished()` is true and every line has been given.
   */
  async *follow(source: LogSource, sourceId: number, afterSeq: number, isFinished: () => Promise<boolean>): AsyncGenerator<LogLine> {
    const wakeups = this.#bus.subscribe('logAppended', logKey(source, sourceId))[Symbol.asyncIterator]();
    // Listen before reading, so that a line stored in between still wakes us.
    let wakeup = wakeups.next();
    let last = afterSeq;
    try {
      for (;;) {
        // Checked before reading: lines stored before the source finished are then all read below.
        const finished = await isFinished();
        for (;;) {
          const lines = await this.read(source, sourceId, last, READ_BATCH);
          for (const line of lines) {
            last = line.seq;
            yield line;
          }
          if (lines.length < READ_BATCH) break;
        }
        if (finished) return;
        const woke = await Promise.race([wakeup.then(() => true), delay(FOLLOW_BACKSTOP_MS).then(() => false)]);
        if (woke) wakeup = wakeups.next();
      }
    } finally {
      await wakeups.return?.();
    }
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
