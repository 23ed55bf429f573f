// graphql-ws clients for tests, with the headers a browser would send on the upgrade (Cookie, Origin).
import WebSocket, { type ClientOptions } from 'ws';
import type { ClientRequestArgs } from 'node:http';
import { print, type FormattedExecutionResult as ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

export interface WsClientOptions {
  cookie?: string | undefined;
  origin?: string;
  connectionParams?: Record<string, unknown>;
}

export interface WsTestClient {
  client: Client;
  /** Resolves with the close event once the socket closes (e.g. a refused upgrade or a server shutdown). */
  closed: Promise<{ code: number; reason: string }>;
}

export function connectWs(url: string, options: WsClientOptions = {}): WsTestClient {
  const headers: Record<string, string> = {};
  if (options.cookie) headers.cookie = options.cookie;
  class HeaderWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[], opts?: ClientOptions | ClientRequestArgs) {
      super(address, protocols, { ...opts, headers, ...(options.origin ? { origin: options.origin } : {}) });
    }
  }
  let resolveClosed!: (event: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (resolveClosed = resolve));
  const client = createClient({
    url,
    webSocketImpl: HeaderWebSocket,
    connectionParams: options.connectionParams,
    retryAttempts: 0,
    lazy: true,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        resolveClosed({ code, reason: String(reason) });
      },
    },
  });
  return { client, closed };
}

/** Runs a query or mutation over the socket and returns its single result. */
export async function execute<TData, TVariables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): Promise<ExecutionResult<TData, unknown>> {
  for await (const result of client.iterate<TData>({ query: print(document), variables })) return result;
  throw new Error('the operation completed without a result');
}

/** Starts a subscription and collects what it yields; `next()` waits for the next result. */
export function subscribe<TData, TVariables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<TData, TVariables>,
  variables?: TVariables,
): { next(timeoutMs?: number): Promise<ExecutionResult<TData, unknown>>; stop(): Promise<void> } {
  const iterator = client.iterate<TData>({ query: print(document), variables });
  return {
    async next(timeoutMs = 5000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no subscription result within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const step = await Promise.race([iterator.next(), timeout]);
        if (step.done) throw new Error('the subscription completed');
        return step.value;
      } finally {
        clearTimeout(timer);
      }
    },
    async stop() {
      await iterator.return?.();
    },
  };
}

/** Every result a subscription yields until it completes (the first field of each result's data). */
export async function drain<T>(subscription: { next(timeoutMs?: number): Promise<{ data?: T | null }> }): Promise<T[keyof T][]> {
  const items: T[keyof T][] = [];
  for (;;) {
    try {
      items.push(Object.values((await subscription.next(15_000)).data!)[0] as T[keyof T]);
    } catch (error) {
      if ((error as Error).message === 'the subscription completed') return items;
      throw error;
    }
  }
}
