// One reader per followed log per process: it reads each newly stored batch of lines from the database
// once and hands the same batch to every local follower, so a thousand viewers of one job cost one
// query per batch, not a thousand. Followers never trust it for completeness: each one knows the last
// seq it gave out, drops what it already has, and reads any gap from the database itself.
import type { EventBus } from '../../events/pubsub.ts';
import type { LogLine } from './log-line.entity.ts';

/** A reader that missed a wake-up (Redis keeps nothing) looks again after this long. */
const BACKSTOP_MS = 500;
export const READ_BATCH = 5000;
/** A follower that lets more lines than this pile up (its client reads slowly) drops them and reads them again from the database when it catches up. */
const MAX_QUEUED_LINES = 50_000;

export interface TailSource {
  /** Stored lines with seq > after, in order, at most `limit`. */
  read(after: number, limit: number): Promise<LogLine[]>;
  /** The highest seq stored, 0 for none. */
  lastSeq(): Promise<number>;
  /** True once no more lines will be written. */
  isFinished(): Promise<boolean>;
}

export type FollowerEvent = { kind: 'lines'; lines: LogLine[] } | { kind: 'behind' } | { kind: 'end' };

/** One viewer's inbox: batches in order, then the end (or an error). */
export class Follower {
  /** The last seq its viewer was given (kept by the reader of this follower). */
  given = 0;
  #queue: LogLine[][] = [];
  #queuedLines = 0;
  #behind = false;
  #ended = false;
  #error: Error | null = null;
  #signal: (() => void) | null = null;

  push(lines: LogLine[]): void {
    if (this.#behind) return;
    if (this.#queuedLines + lines.length > MAX_QUEUED_LINES) {
      this.#queue = [];
      this.#queuedLines = 0;
      this.#behind = true;
    } else {
      this.#queue.push(lines);
      this.#queuedLines += lines.length;
    }
    this.#wake();
  }

  /** Asks an idle follower to read the store again (it is behind lines that reached it some other way). */
  catchUp(): void {
    if (this.#queue.length > 0) return;
    this.#behind = true;
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  fail(error: Error): void {
    this.#error = error;
    this.#wake();
  }

  /** The next batch; `behind` when batches were dropped (read the store again); `end` when no more will come. */
  async next(): Promise<FollowerEvent> {
    for (;;) {
      if (this.#error) throw this.#error;
      const lines = this.#queue.shift();
      if (lines) {
        this.#queuedLines -= lines.length;
        return { kind: 'lines', lines };
      }
      if (this.#behind) {
        this.#behind = false;
        return { kind: 'behind' };
      }
      if (this.#ended) return { kind: 'end' };
      await new Promise<void>((resolve) => (this.#signal = resolve));
    }
  }

  #wake(): void {
    const signal = this.#signal;
    this.#signal = null;
    signal?.();
  }
}

/** The shared reader of one log. It starts with its first follower and stops with its last, or when the log is finished. */
export class LogTail {
  readonly #followers = new Set<Follower>();
  readonly #source: TailSource;
  readonly #onStop: () => void;
  #last = 0;
  #stopped = false;
  #poke: (() => void) | null = null;

  constructor(bus: EventBus, key: string, source: TailSource, onStop: () => void) {
    this.#source = source;
    this.#onStop = onStop;
    void this.#run(bus, key);
  }

  join(): Follower {
    const follower = new Follower();
    this.#followers.add(follower);
    return follower;
  }

  leave(follower: Follower): void {
    this.#followers.delete(follower);
    if (this.#followers.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#onStop();
    this.#poke?.();
  }

  /** Reads what was stored after the last line read and hands it to every follower; returns how many lines. */
  async #readNew(): Promise<number> {
    let count = 0;
    for (;;) {
      const lines = await this.#source.read(this.#last, READ_BATCH);
      if (lines.length > 0) {
        this.#last = lines.at(-1)!.seq;
        count += lines.length;
        for (const follower of this.#followers) follower.push(lines);
      }
      if (lines.length < READ_BATCH || this.#stopped) return count;
    }
  }

  async #run(bus: EventBus, key: string): Promise<void> {
    const wakeups = bus.subscribe('logAppended', key)[Symbol.asyncIterator]();
    // Listen before the first read, so that a batch stored in between still wakes us.
    let wakeup = wakeups.next();
    try {
      this.#last = await this.#source.lastSeq();
      for (;;) {
        if (this.#stopped) return;
        // While lines come, the next wake-up is near: only a look that finds nothing new asks whether
        // the log is finished (then reads once more, since lines stored before it finished are all
        // visible after that answer). This keeps the finished query off the path of every batch.
        if ((await this.#readNew()) === 0 && (await this.#source.isFinished())) {
          await this.#readNew();
          this.#stop();
          for (const follower of this.#followers) follower.end();
          return;
        }
        // Sleep until a batch past what was read is announced, the backstop, or the last follower leaving.
        for (;;) {
          const stopped = new Promise<'stopped'>((resolve) => (this.#poke = () => resolve('stopped')));
          const woke = await Promise.race([wakeup, delay(BACKSTOP_MS), stopped]);
          if (woke === 'stopped') break;
          if (woke === undefined) {
            // A follower that joined while a later batch was visible before an earlier one (the tail
            // started past it) may have nothing queued to tell it so.
            for (const follower of this.#followers) if (follower.given < this.#last) follower.catchUp();
            break;
          }
          // A bus that has ended wakes no one again: the backstop carries on alone.
          wakeup = woke.done ? new Promise(() => {}) : wakeups.next();
          if (woke.done || woke.value.lastSeq > this.#last) break;
        }
      }
    } catch (error) {
      this.#stop();
      for (const follower of this.#followers) follower.fail(error as Error);
    } finally {
      this.#poke = null;
      await wakeups.return?.();
    }
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}
