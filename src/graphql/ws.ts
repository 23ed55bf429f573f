// GraphQL over WebSocket (graphql-ws protocol) on the same path as HTTP, executed through yoga's
// envelop so that limits, masking and the context factory are the same as over HTTP.
import type { ExecutionArgs, GraphQLError } from 'graphql';
import type { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { formatWsError, maskError } from './errors.ts';
import type { WsServerContext, Yoga } from './yoga.ts';

type Enveloped = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

/** Serves graphql-ws on `wss`; returns a function that closes every socket (1001) on shutdown. */
export function serveGraphqlWs(wss: WebSocketServer, yoga: Yoga): { dispose(): void | Promise<void> } {
  return useServer(
    {
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
          return {
            schema,
            document,
            operationName: payload.operationName,
            variableValues: payload.variables,
            contextValue: await contextFactory(),
            rootValue,
          } satisfies ExecutionArgs;
        } catch (error) {
          const masked = maskError(error, 'Unexpected error.') as GraphQLError;
          if (masked !== error) console.error('graphql-ws: operation failed', error);
          return [masked];
        }
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        'errors' in result && result.errors ? { ...result, errors: result.errors.map(formatWsError) } : result,
      onError: (_ctx, _id, _payload, errors) => errors.map(formatWsError),
    },
    wss,
  );
}
