// A minimal graphql-ws (graphql-transport-ws) client on `ws`, for subscribers by the hundred: no
// retries, no async iterators, one callback per result with the time the message arrived. The API
// token travels in connection_init, as README says.
import WebSocket from 'ws';

type ServerMessage =
  | { type: 'connection_ack' }
  | { type: 'ping' }
  | { type: 'pong' }
  | { type: 'next'; id: string; payload: { data?: unknown; errors?: { message: string }[] } }
  | { type: 'error'; id: string; payload: { message: string }[] }
  | { type: 'complete'; id: string };

interface Pending {
  onNext: (data: any, arrivedAt: number) => void;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface Subscription {
  /** Resolves when the server completes the subscription; rejects on an error or a closed socket. */
  done: Promise<void>;
  stop(): void;
}

export class WsConnection {
  readonly #socket: WebSocket;
  readonly #pending = new Map<string, Pending>();
  #nextId = 0;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (raw: Buffer) => {
      const arrivedAt = Date.now();
      const message = JSON.parse(raw.toString()) as ServerMessage;
      switch (message.type) {
        case 'next': {
          const pending = this.#pending.get(message.id);
          if (!pending) return;
          if (message.payload.errors?.length) return this.#settle(message.id, new Error(message.payload.errors[0]!.message));
          pending.onNext(message.payload.data, arrivedAt);
          return;
        }
        case 'error':
          return this.#settle(message.id, new Error(message.payload[0]?.message ?? 'subscription error'));
        case 'complete':
          return this.#settle(message.id, null);
        case 'ping':
          return socket.send('{"type":"pong"}');
        default:
          return;
      }
    });
    socket.on('close', (code, reason) => {
      for (const id of [...this.#pending.keys()]) this.#settle(id, new Error(`socket closed (${code} ${reason.toString()})`));
    });
  }

  /** Connects and initialises with the API token; resolves on connection_ack. */
  static open(url: string, token: string, timeoutMs = 30_000): Promise<WsConnection> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false });
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no connection_ack within ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', fail);
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      const onAck = (raw: Buffer) => {
        if ((JSON.parse(raw.toString()) as { type: string }).type !== 'connection_ack') return;
        clearTimeout(timer);
        socket.off('message', onAck);
        socket.off('error', fail);
        socket.on('error', () => {}); // reported through 'close'
        resolve(new WsConnection(socket));
      };
      socket.on('message', onAck);
      socket.once('close', (code) => fail(new Error(`closed before connection_ack (${code})`)));
    });
  }

  subscribe(query: string, variables: Record<string, unknown>, onNext: (data: any, arrivedAt: number) => void): Subscription {
    const id = String(++this.#nextId);
    const done = new Promise<void>((resolve, reject) => this.#pending.set(id, { onNext, resolve, reject }));
    done.catch(() => {}); // handled where it is awaited; a socket may close before that
    this.#socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    return {
      done,
      stop: () => {
        if (!this.#pending.has(id)) return;
        this.#socket.send(JSON.stringify({ id, type: 'complete' }));
        this.#settle(id, null);
      },
    };
  }

  close(): void {
    this.#socket.close(1000);
  }

  #settle(id: string, error: Error | null): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve();
  }
}

/** Opens `count` connections, `parallel` at a time (a burst of a thousand upgrades at once is its own test). */
export async function openMany(url: string, token: string, count: number, parallel = 50): Promise<WsConnection[]> {
  const connections: WsConnection[] = [];
  for (let i = 0; i < count; i += parallel) {
    connections.push(...(await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, () => WsConnection.open(url, token)))));
  }
  return connections;
}
