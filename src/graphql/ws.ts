// GraphQL over WebSocket (graphql-ws protocol) on the same path as HTTP, executed through yoga's
// envelop so that limits, masking and the context factory are the same as over HTTP.
import type { ExecutionArgs, GraphQLError } from 'graphql';
import type { WebSocket, WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Viewer } from '../auth/auth.service.ts';
import type { EventBus } from '../events/pubsub.ts';
import type { RequestContext } from '../http/context.ts';
import { DomainError } from '../domain/errors.ts';
import { checkInput } from '../http/input-guard.ts';
import { formatWsError, maskError } from './errors.ts';
import { jsonMessageReplacer } from './serialize-once.ts';
import type { WsServerContext, Yoga } from './yoga.ts';

type Enveloped = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

/** Close code for a socket whose credential ended (graphql-ws clients do not retry it). */
export const CREDENTIAL_ENDED = 4401;
/** Close code for a connection_init whose connectionParams the input check refuses (graphql-ws's Bad Request: clients do not retry it). */
export const BAD_CONNECTION_PARAMS = 4400;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Serves graphql-ws on `wss`; returns a function that closes every socket (1001) on shutdown. */
export function serveGraphqlWs(wss: WebSocketServer, yoga: Yoga, bus: EventBus): { dispose(): void | Promise<void> } {
  const watched = new WeakSet<WebSocket>();
  const server = useServer(
    {
      // connectionParams are input like any other: a bad string closes the socket with 4400 and says which.
      onConnect: (ctx) => {
        try {
          checkInput(ctx.connectionParams ?? {}, ['connectionParams']);
          return true;
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
          ctx.extra.socket.close(BAD_CONNECTION_PARAMS, closeReason(`${error.code}: ${error.field ?? 'connectionParams'}`));
          return false;
        }
      },
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const serverContext: WsServerContext = { wsRequest: ctx.extra.request, connectionParams: ctx.connectionParams };
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped(serverContext);
        // Limits throw from parse and validate; answer them per operation instead of closing the socket.
        try {
          const document = parse(payload.query);
          const errors = validate(schema, document);
          if (errors.length > 0) return [...errors];
          const rootValue: Enveloped = { execute, subscribe };
          const contextValue = (await contextFactory()) as RequestContext;
          if (contextValue.viewer && !watched.has(ctx.extra.socket)) {
            watched.add(ctx.extra.socket);
            closeWhenCredentialEnds(ctx.extra.socket, contextValue.viewer, bus);
          }
          return {
            schema,
            document,
            operationName: payload.operationName,
            variableValues: payload.variables,
            contextValue,
            rootValue,
          } satisfies ExecutionArgs;
        } catch (error) {
          const masked = maskError(error, 'Unexpected error.') as GraphQLError;
          if (masked !== error && !(masked.originalError instanceof DomainError)) console.error('graphql-ws: operation failed', error);
          return [masked];
        }
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        'errors' in result && result.errors ? { ...result, errors: result.errors.map(formatWsError) } : result,
      onError: (_ctx, _id, _payload, errors) => errors.map(formatWsError),
      jsonMessageReplacer,
    },
    wss,
  );
  // graphql-ws's adapter answers any error a socket emits by logging it with its stack and closing
  // with 4500. The errors `ws` emits are the peer's protocol faults (a message over maxPayload, bad
  // UTF-8, a bad frame), and `ws` has already closed with their code (1009, 1007, 1002…): they are
  // not the server's failures, so they are dropped quietly. Anything else is still logged and closed.
  // (Registered after useServer, so its listener exists to be replaced.)
  wss.on('connection', (socket: WebSocket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error: Error & { code?: unknown }) => {
      if (typeof error.code === 'string' && error.code.startsWith('WS_ERR_')) return;
      console.error('graphql-ws: socket error', error);
      socket.close(4500, 'Internal server error');
    });
  });
  return server;
}

/** A close reason fits in 123 bytes of UTF-8. */
function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}

/**
 * A socket's operations all act with the credential it presented: when that session is logged out,
 * that token revoked (on any instance), or either expires, the socket is closed with 4401 so that no
 * subscription outlives it.
 */
function closeWhenCredentialEnds(socket: WebSocket, viewer: Viewer, bus: EventBus): void {
  const { id, kind, expiresAt } = viewer.credential;
  const ends = kind === 'session' ? 'SESSION_ENDED' : 'API_TOKEN_REVOKED';
  const close = (reason: string) => socket.close(CREDENTIAL_ENDED, reason);
  const timer = expiresAt
    ? setTimeout(() => close(kind === 'session' ? 'Session expired' : 'API token expired'), Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), MAX_TIMER_MS))
    : null;
  const events = bus.subscribe('account', String(viewer.user.id))[Symbol.asyncIterator]();
  void (async () => {
    for (let step = await events.next(); !step.done; step = await events.next()) {
      if (step.value.kind === ends && step.value.subjectId === id) close(kind === 'session' ? 'Session ended' : 'API token revoked');
    }
  })().catch(() => close('Credential check failed'));
  socket.once('close', () => {
    if (timer) clearTimeout(timer);
    void events.return?.();
  });
}
