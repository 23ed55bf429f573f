// Pub/sub between processes: Redis when REDIS_URL is set, in-process otherwise (a single instance).
// Publishers persist first and publish after; subscribers treat an event as a wake-up and read
// the database for anything they may have missed.
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import type { Topics } from './topics.ts';
import { redact } from '../config.ts';
import { OutageLog } from '../util/outage-log.ts';
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
  // The channels of the subscribe connection are only what RedisTransport asks for while it is up: no
  // command queued while it is down (sent late or dropped after some retries), nothing that the client
  // restores from its own bookkeeping (which knows only the SUBSCRIBEs that were answered).
  const subscribeClient = new Redis(url, { ...options, enableOfflineQueue: false, autoResubscribe: false, autoResendUnfulfilledCommands: false });
  // Kept for the message below until the transport listens (without a listener an error event would crash the process).
  let lastError: Error | undefined;
  const keepError = (error: Error) => (lastError = error);
  for (const client of [publishClient, subscribeClient]) client.on('error', keepError);
  try {
    await Promise.all([publishClient.connect(), subscribeClient.connect()]);
  } catch (error) {
    publishClient.disconnect();
    subscribeClient.disconnect();
    throw new Error(`cannot reach Redis at ${redact(url)}: ${(lastError ?? (error as Error)).message}`, { cause: error });
  }
  for (const client of [publishClient, subscribeClient]) client.off('error', keepError);
  const transport = new RedisTransport(publishClient, subscribeClient, redact(url));
  return {
    bus: createPubSub<Topics>({ eventTarget: transport }),
    ping: async () => {
      try {
        return (await withTimeout(publishClient.ping(), 1000, 'Redis ping')) === 'PONG';
      } catch {
        return false;
      }
    },
    close: async () => {
      transport.closing = true;
      await Promise.all([publishClient, subscribeClient].map(end));
    },
  };
}

/** QUIT while connected; otherwise stop reconnecting (a QUIT would be refused or wait in the offline queue). */
async function end(client: Redis): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

/**
 * The event target of the bus over Redis. A Redis subscription lives as long as its connection, so
 * this keeps the channels that have listeners here and subscribes to all of them each time the
 * subscribe connection is ready: after an outage every subscription is back, including those made
 * while Redis was down. A channel is subscribed when it gets its first listener and unsubscribed when
 * it loses its last one; while Redis is down those calls fail and the next connection starts from the
 * set as it is then. Events are wake-ups (readers also look at the database), so a publish that
 * fails is not retried; failures are not thrown at the bus (an unhandled rejection would end the
 * process) but logged, once when Redis goes away and once when it is back.
 */
class RedisTransport {
  readonly #publishClient: Redis;
  readonly #subscribeClient: Redis;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #outage = new OutageLog('events: publishing and subscribing through Redis');
  /** The subscribe connection has every channel in #listeners (as of its last resubscribe). */
  #subscribed = true;
  /** Set by close(): the connections end on purpose. */
  closing = false;

  constructor(publishClient: Redis, subscribeClient: Redis, where: string) {
    this.#publishClient = publishClient;
    this.#subscribeClient = subscribeClient;
    for (const client of [publishClient, subscribeClient]) {
      client.on('error', (error: Error) => this.#failed(error));
      client.on('close', () => this.#failed(new Error(`connection to ${where} closed`)));
    }
    subscribeClient.on('close', () => (this.#subscribed = false));
    subscribeClient.on('ready', () => this.#resubscribe());
    publishClient.on('ready', () => this.#maybeBack());
    subscribeClient.on('message', (channel: string, message: string) => this.#deliver(channel, message));
  }

  addEventListener(type: string, listener: Listener | null): void {
    if (!listener) return;
    let listeners = this.#listeners.get(type);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(type, listeners);
      // Failing, the connection is down or about to be: its next 'ready' subscribes the channel.
      this.#subscribeClient.subscribe(type).catch((error: unknown) => {
        this.#subscribed = false;
        this.#failed(error);
      });
    }
    listeners.add(listener);
  }

  removeEventListener(type: string, listener: Listener | null): void {
    const listeners = this.#listeners.get(type);
    if (!listener || !listeners?.delete(listener) || listeners.size > 0) return;
    this.#listeners.delete(type);
    // Failing, the connection is down (its successor never subscribes the channel) or keeps a channel whose messages are ignored.
    this.#subscribeClient.unsubscribe(type).catch((error: unknown) => this.#failed(error));
  }

  dispatchEvent(event: CustomEvent): boolean {
    const message = event.detail === undefined ? '' : JSON.stringify(event.detail);
    this.#publishClient.publish(event.type, message).then(
      () => this.#maybeBack(),
      (error: unknown) => this.#failed(error),
    );
    return true;
  }

  #deliver(channel: string, message: string): void {
    const listeners = this.#listeners.get(channel);
    if (!listeners) return;
    let detail: unknown;
    try {
      detail = message === '' ? null : JSON.parse(message);
    } catch {
      return; // not one of ours
    }
    const event = new CustomEvent(channel, { detail });
    for (const listener of [...listeners]) {
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  }

  /** On every (re)connection of the subscribe client: the new connection has no channels yet. */
  #resubscribe(): void {
    const channels = [...this.#listeners.keys()];
    if (channels.length === 0) {
      this.#subscribed = true;
      this.#maybeBack();
      return;
    }
    this.#subscribeClient.subscribe(...channels).then(
      () => {
        this.#subscribed = true;
        this.#maybeBack();
      },
      // The connection went away again: its next 'ready' tries again.
      (error: unknown) => this.#failed(error),
    );
  }

  #failed(error: unknown): void {
    if (!this.closing) this.#outage.failed(error);
  }

  #maybeBack(): void {
    if (this.#subscribed && this.#publishClient.status === 'ready' && this.#subscribeClient.status === 'ready') this.#outage.succeeded();
  }
}
