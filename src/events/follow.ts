// Follows an object that changes: yields it now, then again each time its topic says it changed (or
// after a second, in case a wake-up was lost), until it is finished. The database is read each time;
// the event only says when to look.
import type { EventBus } from './pubsub.ts';
import type { Topics } from './topics.ts';

type KeyedTopic = { [K in keyof Topics]: Topics[K] extends [string, unknown] ? K : never }[keyof Topics];

const BACKSTOP_MS = 1000;

export async function* followChanges<T>(
  bus: EventBus,
  topic: KeyedTopic,
  key: string,
  read: () => Promise<T>,
  finished: (value: T) => boolean,
): AsyncGenerator<T> {
  const wakeups = bus.subscribe(topic, key)[Symbol.asyncIterator]();
  // Listen before the first read, so that a change in between still wakes us.
  let wakeup = wakeups.next();
  try {
    for (;;) {
      const value = await read();
      yield value;
      if (finished(value)) return;
      const woke = await Promise.race([wakeup.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), BACKSTOP_MS).unref())]);
      if (woke) wakeup = wakeups.next();
    }
  } finally {
    await wakeups.return?.();
  }
}
