// What clients see of errors: a DomainError shows its message with `extensions.code` (and
// `extensions.field` for input errors); anything unexpected becomes "Unexpected error." with no stack.
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { maskError as yogaMaskError, type MaskError, type Plugin } from 'graphql-yoga';
import { DomainError, type ErrorCode } from '../domain/errors.ts';
import { asServiceUnavailable } from '../db/availability.ts';

export const maskError: MaskError = (error, message) => {
  // Expected failures pass unchanged (their extensions carry the code), and are not logged as errors.
  if (error instanceof GraphQLError && error.originalError instanceof DomainError) return error;
  // The database being away is an outage, not a bug: SERVICE_UNAVAILABLE (503, Retry-After), logged once per outage.
  const unavailable = asServiceUnavailable(error instanceof GraphQLError ? (error.originalError ?? error) : error);
  if (unavailable) {
    const located = error instanceof GraphQLError ? error : null;
    return new GraphQLError(unavailable.message, { nodes: located?.nodes ?? null, path: located?.path ?? null, originalError: unavailable, extensions: unavailable.extensions });
  }
  // Never in development mode: no stack or original message leaves the process.
  return yogaMaskError(error, message, false);
};

/** graphql-ws sends errors as they are; drop the transport hints yoga keeps for HTTP. */
export function formatWsError(error: GraphQLError): GraphQLFormattedError {
  const formatted = error.toJSON();
  const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions ?? {};
  return Object.keys(extensions).length > 0 ? { ...formatted, extensions } : { ...formatted, extensions: undefined };
}

/** The HTTP status of a refusal; every input error is 400. */
const REFUSAL_STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  SESSION_INVALID: 401,
  SESSION_EXPIRED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  ORIGIN_NOT_ALLOWED: 401,
  INVALID_CREDENTIALS: 401,
  ACCOUNT_NOT_CONFIRMED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  SERVICE_UNAVAILABLE: 503,
};

/**
 * An operation refused before it produced any data (no `data` in the result: a subscription whose
 * subscribe failed, an argument the input guard refused, a request body over its cap) answers with the
 * status of its errors over HTTP and SSE: 401, 404, 400… instead of the 500 yoga gives a result with
 * neither data nor errors of its own making. Results with data, and errors that are not expected
 * refusals, keep yoga's status (200 for field errors beside data).
 */
export function useRefusalStatus(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || isAsyncIterable(result) || 'data' in result || !result.errors?.length) return;
      const statuses = result.errors.map(refusalStatus);
      if (statuses.some((status) => status === null)) return;
      const status = Math.max(...(statuses as number[]));
      setResult({ ...result, extensions: { ...result.extensions, http: { ...(result.extensions?.['http'] as object | undefined), status } } });
    },
  };
}

function refusalStatus(error: unknown): number | null {
  if (!(error instanceof GraphQLError) || !(error.originalError instanceof DomainError)) return null;
  return REFUSAL_STATUS[error.originalError.code] ?? 400;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
