// Pub/sub between processes: Redis when REDIS_URL is set, in-process otherwise (a single instance).
// Publishers persist first and publish after; subscribers treat an event as a wake-up and read
// the database for anything they may have missed.
import { createPubSub, type PubSub } from 'graphql-yoga';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Topics } from './topics.ts';
import { redact } from '../config.ts';
import { withTimeout } from '../util/with-timeout.ts';

export type EventBus = PubSub<Topics>;

export interface Events {
  bus: EventBus;
  /** Resolves true when the transport answers (always true in-process). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export function inProcessEvents(): Events {
  return { bus: createPubSub<Topics>(), ping: async () => true, close: async () => {} };
}

/** Connects two Redis clients (subscribing takes one over) and fails fast when Redis does not answer. */
export async function redisEvents(url: string, connectTimeoutMs = 3000): Promise<Events> {
  const options = { lazyConnect: true, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 2 };
  const publishClient = new Redis(url, options);
  const subscribeClient = new Redis(url, options);
  // ioredis reconnects on its own after start-up; without a listener an error event would crash the process.
  let lastError: Error | undefined;
  for (const client of [publishClient, subscribeClient]) client.on('error', (error: Error) => (lastError = error));
  try {
    await Promise.all([publishClient.connect(), subscribeClient.connect()]);
  } catch (error) {
    publishClient.disconnect();
    subscribeClient.disconnect();
    throw new Error(`cannot reach Redis at ${redact(url)}: ${(lastError ?? (error as Error)).message}`);
  }
  const eventTarget = createRedisEventTarget<CustomEvent>({ publishClient: guarded(publishClient), subscribeClient: guarded(subscribeClient) });
  return {
    bus: createPubSub<Topics>({ eventTarget }),
    ping: async () => {
      try {
        return (await withTimeout(publishClient.ping(), 1000, 'Redis ping')) === 'PONG';
      } catch {
        return false;
      }
    },
    close: async () => {
      await Promise.allSettled([publishClient.quit(), subscribeClient.quit()]);
    },
  };
}

/**
 * The event target calls publish/subscribe/unsubscribe without handling their failures; while Redis is
 * down those would be unhandled rejections that end the process. Events are wake-ups (readers also poll
 * the database), so a lost one is logged, not fatal.
 */
function guarded(client: Redis): Redis {
  let lastReport = 0;
  const report = (error: Error) => {
    if (Date.now() - lastReport < 10_000) return;
    lastReport = Date.now();
    console.error(`events: Redis is unavailable, events are not delivered: ${error.message}`);
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if ((property === 'publish' || property === 'subscribe' || property === 'unsubscribe') && typeof value === 'function') {
        return (...args: unknown[]) => (value.apply(target, args) as Promise<unknown>).catch(report);
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
