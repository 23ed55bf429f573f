// What clients see of errors: a DomainError shows its message with `extensions.code` (and
// `extensions.field` for input errors); anything unexpected becomes "Unexpected error." with no stack.
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { maskError as yogaMaskError, type MaskError } from 'graphql-yoga';
import { DomainError } from '../domain/errors.ts';

export const maskError: MaskError = (error, message) => {
  // Expected failures pass unchanged (their extensions carry the code), and are not logged as errors.
  if (error instanceof GraphQLError && error.originalError instanceof DomainError) return error;
  // Never in development mode: no stack or original message leaves the process.
  return yogaMaskError(error, message, false);
};

/** graphql-ws sends errors as they are; drop the transport hints yoga keeps for HTTP. */
export function formatWsError(error: GraphQLError): GraphQLFormattedError {
  const formatted = error.toJSON();
  const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions ?? {};
  return Object.keys(extensions).length > 0 ? { ...formatted, extensions } : { ...formatted, extensions: undefined };
}
