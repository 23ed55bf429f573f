// The GraphQL-over-HTTP handler: yoga with CSRF prevention, CORS limited to allowed origins,
// operation limits (graphql-armor), masked errors, and Set-Cookie for login/logout.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError, type ValidationContext, type ValidationRule } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { processRequest } from 'graphql-upload-minimal';
import type { Config } from '../config.ts';
import { contextForRequest, type RequestContext, type Services } from '../http/context.ts';
import type { OriginPolicy } from '../http/origins.ts';
import { useArgumentGuard } from './argument-guard.ts';
import { maskError, useRefusalStatus } from './errors.ts';
import { getSchema } from './schema.ts';

export const GRAPHQL_PATH = '/graphql';
export const CSRF_HEADER = 'x-graphql-yoga-csrf';
const MAX_UPLOAD_FILES = 101;

/** How the WebSocket transport hands its upgrade request to the same context factory. */
export interface WsServerContext {
  wsRequest: IncomingMessage;
  connectionParams?: Readonly<Record<string, unknown>> | undefined;
}
type NodeServerContext = { req: IncomingMessage; res: ServerResponse } | WsServerContext;

export type Yoga = YogaServerInstance<NodeServerContext, RequestContext>;

export function createGraphqlHandler(config: Config, services: Services, policy: OriginPolicy): Yoga {
  const responseCookies = new WeakMap<Request, string[]>();
  const limits = config.graphqlLimits;
  const tooComplex = (context: ValidationContext | null, error: GraphQLError) =>
    context?.reportError(new GraphQLError(error.message, { extensions: { code: 'QUERY_TOO_COMPLEX' } }));
  const reject = { propagateOnRejection: false, onReject: [tooComplex] };

  const setCookies: Plugin = {
    onResponse({ request, response }) {
      for (const cookie of responseCookies.get(request) ?? []) response.headers.append('set-cookie', cookie);
    },
  };

  // GraphQL multipart requests stream their files (graphql-upload-minimal) instead of yoga's parser,
  // which would hold each file in memory. Limits are enforced while streaming.
  const uploads: Plugin = {
    onRequestParse({ request, serverContext, setRequestParser }) {
      if (!request.headers.get('content-type')?.startsWith('multipart/form-data')) return;
      const { req, res } = serverContext as unknown as { req: IncomingMessage; res: ServerResponse };
      // The services count bytes themselves and fail with TOO_LARGE at the cap. This parser's limit is a
      // backstop above it (with room for what its buffers hold ahead of the reader): when it trips it
      // stops the file stream without ending it, which would leave the reader waiting.
      const maxFileSize = config.builds.uploadMaxBytes + 2 ** 20;
      setRequestParser(() => processRequest(req, res, { maxFileSize, maxFiles: MAX_UPLOAD_FILES }) as Promise<never>);
    },
  };

  return createYoga<NodeServerContext, RequestContext>({
    schema: getSchema(),
    // The body of a multipart request is read by the uploads plugin, as a stream; JSON bodies are capped in http/server.ts.
    maxRequestBodySize: false,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: config.graphiql ? { subscriptionsProtocol: 'WS', title: 'Dockyard' } : false,
    maskedErrors: { maskError, isDev: false },
    // Credentials only from the service's own pages and the configured origins.
    cors: { origin: policy.allowedOrigins, credentials: true },
    logging: config.env === 'test' ? false : 'info',
    plugins: [
      useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }),
      EnvelopArmorPlugin({
        maxDepth: { n: limits.maxDepth, ...reject },
        maxAliases: { n: limits.maxAliases, ...reject },
        costLimit: { maxCost: limits.maxCost, ...reject },
        maxDirectives: { n: limits.maxDirectives, ...reject },
        maxTokens: { n: limits.maxTokens, ...reject, onReject: [(_context, error) => { throw new GraphQLError(error.message, { extensions: { code: 'QUERY_TOO_COMPLEX' } }); }] },
        blockFieldSuggestion: { enabled: !config.graphiql },
      }),
      ...(config.graphiql ? [] : [disableIntrospection()]),
      setCookies,
      uploads,
      useArgumentGuard(),
      useRefusalStatus(),
    ],
    context: async (initial) => {
      if ('wsRequest' in initial) {
        return contextForRequest(services, policy, initial.wsRequest, { connectionParams: initial.connectionParams, responseCookies: null });
      }
      const cookies: string[] = [];
      responseCookies.set(initial.request, cookies);
      return contextForRequest(services, policy, initial.req, { responseCookies: cookies });
    },
  });
}

/** Refuses `__schema` and `__type` when GraphiQL is off (production). */
function disableIntrospection(): Plugin {
  const rule: ValidationRule = (context) => ({
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        context.reportError(new GraphQLError('Introspection is disabled.', { nodes: [node], extensions: { code: 'INTROSPECTION_DISABLED' } }));
      }
    },
  });
  return { onValidate: ({ addValidationRule }) => addValidationRule(rule) };
}
