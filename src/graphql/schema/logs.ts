// GraphQL for log lines, shared by builds and jobs.
import { builder } from '../builder.ts';
import { serializeOnce } from '../serialize-once.ts';
import type { LogLine } from '../../domain/logs/log-line.entity.ts';

export const LogStreamEnum = builder.enumType('LogStream', {
  values: ['stdout', 'stderr', 'system'] as const,
  description: '`system` lines are written by Dockyard itself (fetching, pushing, the final state).',
});

export const LogLineRef = builder.objectRef<LogLine>('LogLine').implement({
  description: 'One line of output. `seq` counts from 1 without gaps; pass the last one you saw as `afterSeq` to resume.',
  fields: (t) => ({
    seq: t.exposeInt('seq'),
    stream: t.expose('stream', { type: LogStreamEnum }),
    text: t.exposeString('text'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});

/** A chunk's text, made once for every viewer of it (followers of one log share the same chunk). */
const chunkTexts = new WeakMap<LogLine[], string>();
function chunkText(lines: LogLine[]): string {
  let text = chunkTexts.get(lines);
  if (text === undefined) {
    text = serializeOnce(lines.map((line) => `${line.text}\n`).join(''));
    chunkTexts.set(lines, text);
  }
  return text;
}

/** Consecutive lines, as they were stored together: what the chunk subscriptions deliver. */
export const LogChunkRef = builder.objectRef<LogLine[]>('LogChunk').implement({
  description:
    'Consecutive lines of output (at most 5,000), as they were stored together. A fast log gives large chunks and a slow one chunks of one line; pass `lastSeq` as `afterSeq` to resume.',
  fields: (t) => ({
    firstSeq: t.int({ resolve: (lines) => lines[0]!.seq }),
    lastSeq: t.int({ resolve: (lines) => lines.at(-1)!.seq }),
    text: t.string({
      description: "The lines' text, each followed by a newline: the cheap way to show a log (no object per line).",
      resolve: chunkText,
    }),
    lines: t.field({ type: [LogLineRef], resolve: (lines) => lines }),
  }),
});

/**
 * One line at a time, for the line subscriptions. A plain iterator rather than an async generator
 * around the chunks: a line of a chunk already in hand is given without another round of promises,
 * which counts when a thousand viewers follow one log.
 */
export function eachLine(chunks: AsyncGenerator<LogLine[]>): AsyncIterableIterator<LogLine> {
  let pending: LogLine[] = [];
  let index = 0;
  const iterator: AsyncIterableIterator<LogLine> = {
    async next() {
      while (index >= pending.length) {
        const step = await chunks.next();
        if (step.done) return { done: true, value: undefined };
        pending = step.value;
        index = 0;
      }
      return { done: false, value: pending[index++]! };
    },
    async return() {
      await chunks.return(undefined);
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      await chunks.return(undefined);
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
