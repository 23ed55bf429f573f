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
import { DomainError } from '../domain/errors.ts';
import { useArgumentGuard } from './argument-guard.ts';
import { maskError, useRefusalStatus } from './errors.ts';
import { getSchema } from './schema.ts';

export const GRAPHQL_PATH = '/graphql';
export const CSRF_HEADER = 'x-graphql-yoga-csrf';
/**
 * The most a GraphQL request may carry besides its files: a JSON (or form) body, or the `operations`
 * (and `map`) field of a multipart request. Over it: 413 with TOO_LARGE.
 */
export const MAX_GRAPHQL_BODY = 1024 * 1024;
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
  // which would hold each file in memory. Limits are enforced while streaming. Other bodies are capped
  // at MAX_GRAPHQL_BODY as they are read (http/server.ts refuses a larger declared length up front;
  // this catches a chunked body, which declares none).
  const bodies: Plugin = {
    onRequestParse({ request, serverContext, requestParser, setRequestParser, fetchAPI }) {
      if (!request.headers.get('content-type')?.startsWith('multipart/form-data')) {
        // A declared length is held to by Node's parser, and checked against the cap before yoga starts.
        if (requestParser && request.body && !request.headers.has('content-length')) {
          setRequestParser((parsed) => requestParser(capBody(parsed, fetchAPI)));
        }
        return;
      }
      const { req, res } = serverContext as unknown as { req: IncomingMessage; res: ServerResponse };
      // The services count bytes themselves and fail with TOO_LARGE at the cap. This parser's limit is a
      // backstop above it (with room for what its buffers hold ahead of the reader): when it trips it
      // stops the file stream without ending it, which would leave the reader waiting.
      const maxFileSize = config.builds.uploadMaxBytes + 2 ** 20;
      setRequestParser(() =>
        processRequest(req, res, { maxFieldSize: MAX_GRAPHQL_BODY, maxFileSize, maxFiles: MAX_UPLOAD_FILES }).catch((error: unknown) => {
          throw multipartRefusal(error);
        }) as Promise<never>,
      );
    },
  };

  return createYoga<NodeServerContext, RequestContext>({
    schema: getSchema(),
    // Bodies are capped by the bodies plugin (and http/server.ts); yoga's own cap would count a multipart request's files.
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
      bodies,
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

function tooLarge(message: string): GraphQLError {
  return new GraphQLError(message, { originalError: new DomainError('TOO_LARGE', message) });
}

/** A request body that errors (TOO_LARGE) once more than MAX_GRAPHQL_BODY bytes have been read from it. */
function capBody(request: Request, fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream }): Request {
  let size = 0;
  // As yoga's own body limit does: the stream class must match the body's (native or whatwg-node's).
  const Transform = request.body instanceof ReadableStream ? TransformStream : fetchAPI.TransformStream;
  const body = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > MAX_GRAPHQL_BODY) controller.error(tooLarge(`A GraphQL request without files is limited to ${MAX_GRAPHQL_BODY} bytes.`));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body, duplex: 'half' } as RequestInit);
}

/**
 * graphql-upload-minimal refuses a malformed or oversized multipart request with an HttpError (which
 * yoga would mask as a 500): an oversized `operations` or `map` field, or too many files, is TOO_LARGE
 * (413); anything else about the request's shape is INVALID_INPUT (400), with the library's message.
 */
function multipartRefusal(error: unknown): unknown {
  const status = (error as { status?: unknown } | null)?.status;
  const message = error instanceof Error ? error.message : '';
  if (status === 413) {
    return /multipart field/.test(message)
      ? tooLarge(`The operations of a GraphQL multipart request are limited to ${MAX_GRAPHQL_BODY} bytes.`)
      : tooLarge(message);
  }
  if (status === 400) return new GraphQLError(message, { originalError: new DomainError('INVALID_INPUT', message) });
  return error;
}
