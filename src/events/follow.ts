// Follows an object that changes: yields it now, then again each time its topic says it changed (or
// after a second, in case a wake-up was lost), until it is finished. The database is read each time;
// the event only says when to look.
import type { EventBus } from './pubsub.ts';
import type { Topics } from './topics.ts';

type KeyedTopic = { [K in keyof Topics]: Topics[K] extends [string, unknown] ? K : never }[keyof Topics];

const BACKSTOP_MS = 1000;

/**
 * `read` gets the event that caused the read (undefined for the first read and for a backstop look),
 * so that a caller whose events carry the new state can report each change even when several happen
 * before the database is read.
 */
export async function* followChanges<K extends KeyedTopic, T>(
  bus: EventBus,
  topic: K,
  key: string,
  read: (event: Topics[K][1] | undefined) => Promise<T>,
  finished: (value: T) => boolean,
): AsyncGenerator<T> {
  const subscribe = bus.subscribe.bind(bus) as (topic: KeyedTopic, key: string) => AsyncIterable<Topics[K][1]>;
  const wakeups = subscribe(topic, key)[Symbol.asyncIterator]();
  // Listen before the first read, so that a change in between still wakes us.
  let wakeup = wakeups.next();
  let event: Topics[K][1] | undefined;
  try {
    for (;;) {
      const value = await read(event);
      yield value;
      if (finished(value)) return;
      const backstop = new Promise<null>((resolve) => setTimeout(() => resolve(null), BACKSTOP_MS).unref());
      const woke = await Promise.race([wakeup, backstop]);
      event = woke && !woke.done ? woke.value : undefined;
      if (woke) wakeup = wakeups.next();
    }
  } finally {
    await wakeups.return?.();
  }
}
