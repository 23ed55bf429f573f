// The one error type that services throw for expected failures. Transports map it:
// GraphQL turns it into an error with `extensions.code`, REST into its contract's shape.
// Anything else that escapes a service is unexpected and is masked before it reaches a client.

export const ERROR_CODES = {
  // input
  INVALID_LOGIN: 'The login is not acceptable.',
  INVALID_EMAIL: 'The email address is not valid.',
  WEAK_PASSWORD: 'The password is empty or too weak.',
  INVALID_INPUT: 'An argument is not acceptable.',
  LOGIN_TAKEN: 'That login is already registered.',
  EMAIL_TAKEN: 'That email address is already registered.',
  // accounts and credentials
  INVALID_CREDENTIALS: 'Unknown login or wrong password.',
  ACCOUNT_NOT_CONFIRMED: 'The account has not been confirmed yet.',
  INVALID_CONFIRMATION_TOKEN: 'The confirmation token does not match.',
  CONFIRMATION_TOKEN_EXPIRED: 'The confirmation token has expired.',
  UNAUTHENTICATED: 'This needs a logged-in user.',
  SESSION_INVALID: 'The session is unknown or has ended.',
  SESSION_EXPIRED: 'The session has expired.',
  TOKEN_INVALID: 'The API token is unknown.',
  TOKEN_EXPIRED: 'The API token has expired.',
  TOKEN_REVOKED: 'The API token has been revoked.',
  ORIGIN_NOT_ALLOWED: 'The session cookie is not accepted from this origin.',
  TOO_MANY_REQUESTS: 'Too many login attempts. Try again later.',
  // build sources
  INVALID_DOCKERFILE: 'The Dockerfile is not accepted.',
  INVALID_BUILD_CONTEXT: 'The build context is not accepted.',
  INVALID_SOURCE: 'The build source is not accepted.',
  URL_NOT_ALLOWED: 'That URL is not allowed.',
  SOURCE_FETCH_FAILED: 'The build source could not be fetched.',
  TOO_LARGE: 'The upload or download is over the size cap.',
  // objects
  NOT_FOUND: 'No such object.',
  CONFLICT: 'The object is busy.',
  // dependencies
  SERVICE_UNAVAILABLE: 'The database is unavailable for a moment; try again shortly.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class DomainError extends Error {
  override name = 'DomainError';
  readonly code: ErrorCode;
  /** The input field the error is about, when there is one. */
  readonly field: string | undefined;
  /** What GraphQL shows as `extensions` (graphql-js copies it from the original error). */
  readonly extensions: { code: ErrorCode; field?: string };

  constructor(code: ErrorCode, message: string = ERROR_CODES[code], field?: string) {
    super(message);
    this.code = code;
    this.field = field;
    this.extensions = field ? { code, field } : { code };
  }
}

/**
 * TOO_MANY_REQUESTS: a rate limit refused the request. GraphQL over HTTP answers 429 with `Retry-After`
 * (yoga reads `extensions.http`, which it does not show to clients), and `extensions.retryAfterSeconds`
 * says the same in the body; REST routes map it to their own 429.
 */
export class TooManyRequestsError extends DomainError {
  override name = 'TooManyRequestsError';
  readonly retryAfterSeconds: number;
  override readonly extensions: {
    code: ErrorCode;
    field?: string;
    retryAfterSeconds: number;
    http: { status: 429; headers: { 'Retry-After': string } };
  };

  constructor(retryAfterSeconds: number, message: string = ERROR_CODES.TOO_MANY_REQUESTS) {
    super('TOO_MANY_REQUESTS', message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
    this.extensions = {
      code: 'TOO_MANY_REQUESTS',
      retryAfterSeconds: this.retryAfterSeconds,
      http: { status: 429, headers: { 'Retry-After': String(this.retryAfterSeconds) } },
    };
  }
}

/**
 * SERVICE_UNAVAILABLE: a dependency (the database) does not answer. Not the client's fault and not a bug:
 * GraphQL over HTTP answers 503 with `Retry-After`, REST routes 503 in their formats.
 */
export class ServiceUnavailableError extends DomainError {
  override name = 'ServiceUnavailableError';
  readonly retryAfterSeconds: number;
  override readonly extensions: {
    code: ErrorCode;
    field?: string;
    http: { status: 503; headers: { 'Retry-After': string } };
  };

  constructor(retryAfterSeconds = 5, message: string = ERROR_CODES.SERVICE_UNAVAILABLE) {
    super('SERVICE_UNAVAILABLE', message);
    this.retryAfterSeconds = retryAfterSeconds;
    this.extensions = { code: 'SERVICE_UNAVAILABLE', http: { status: 503, headers: { 'Retry-After': String(retryAfterSeconds) } } };
  }
}
