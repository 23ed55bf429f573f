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
  /** Its starting point is known (the last seq stored when it started). */
  #started = false;
  #stopped = false;
  /** The highest seq an event said is stored. */
  #announced = 0;
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

  /**
   * Lines this process has just stored, handed over without reading them back: taken only when they
   * continue exactly where this tail is (otherwise the wake-up makes it read the store as usual).
   */
  offer(lines: LogLine[]): void {
    if (this.#stopped || !this.#started || lines.length === 0 || lines[0]!.seq !== this.#last + 1) return;
    this.#last = lines.at(-1)!.seq;
    for (const follower of this.#followers) follower.push(lines);
    if (this.#announced > this.#last) this.#poke?.();
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
      // Lines handed over while the read was under way are dropped here (followers drop them too).
      const fresh = lines.filter((line) => line.seq > this.#last);
      if (fresh.length > 0) {
        this.#last = fresh.at(-1)!.seq;
        count += fresh.length;
        for (const follower of this.#followers) follower.push(fresh);
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
      this.#started = true;
      for (;;) {
        if (this.#stopped) return;
        // While lines come, the next wake-up is near: only a look that finds nothing new asks whether
        // the log is finished (then reads once more, since lines stored before it finished are all
        // visible after that answer). This keeps the finished query off the path of every batch.
        const found = await this.#readNew();
        if (found === 0 && (await this.#source.isFinished())) {
          await this.#readNew();
          this.#stop();
          for (const follower of this.#followers) follower.end();
          return;
        }
        // Sleep until a batch past what was read is announced, the backstop, or the last follower
        // leaving. A look that found nothing while more was announced met a batch stored before the
        // one ahead of it: wait for the next event or hand-over before looking again.
        let mustWait = found === 0;
        while (!this.#stopped && (mustWait || this.#announced <= this.#last)) {
          const poked = new Promise<'poked'>((resolve) => (this.#poke = () => resolve('poked')));
          const woke = await Promise.race([wakeup, delay(BACKSTOP_MS), poked]);
          mustWait = false;
          if (woke === 'poked') continue;
          if (woke === undefined) {
            // A follower that joined while a later batch was visible before an earlier one (the tail
            // started past it) may have nothing queued to tell it so.
            for (const follower of this.#followers) if (follower.given < this.#last) follower.catchUp();
            break;
          }
          // A bus that has ended wakes no one again: the backstop carries on alone.
          wakeup = woke.done ? new Promise(() => {}) : wakeups.next();
          if (woke.done) break;
          this.#announced = Math.max(this.#announced, woke.value.lastSeq);
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
