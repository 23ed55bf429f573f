// The per-request context shared by GraphQL (HTTP and WebSocket) and, later, the REST router:
// who is asking (the viewer), why a presented credential was refused, and the services to call.
import type { AuthService, Credential, Viewer } from '../auth/auth.service.ts';
import { API_TOKEN_PREFIX } from '../auth/auth.service.ts';
import { SESSION_COOKIE, parseCookies } from '../auth/cookies.ts';
import { DomainError } from '../domain/errors.ts';
import type { UsersService } from '../domain/users/users.service.ts';
import type { ImagesService } from '../domain/images/images.service.ts';
import type { BuildsService } from '../domain/builds/builds.service.ts';
import type { PipelinesService } from '../domain/pipelines/pipelines.service.ts';
import type { JobsService } from '../domain/jobs/jobs.service.ts';
import type { EventBus } from '../events/pubsub.ts';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { originAllowed, secureCookies, type OriginPolicy } from './origins.ts';
import { clientAddress } from './client-address.ts';

export interface Services {
  users: UsersService;
  auth: AuthService;
  images: ImagesService;
  builds: BuildsService;
  pipelines: PipelinesService;
  jobs: JobsService;
  bus: EventBus;
}

export interface RequestContext {
  services: Services;
  viewer: Viewer | null;
  /** Why a presented credential was refused (expired, revoked…); null when none was presented or it was fine. */
  authError: DomainError | null;
  /** Set-Cookie values for the HTTP response; null on WebSocket, where no cookie can be set. */
  responseCookies: string[] | null;
  /** Whether cookies set for this request get the Secure flag. */
  secureCookies: boolean;
  /** Where the request comes from (the login rate limit counts by it); see client-address.ts. */
  clientAddress: string | null;
}

export interface CredentialSource {
  authorization?: string | null | undefined;
  cookie?: string | null | undefined;
}

/** Reads the credential a request presents: `Authorization: Bearer <API token>` first, else the session cookie. */
export function readCredential({ authorization, cookie }: CredentialSource): Credential | DomainError | null {
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1] || !match[1].startsWith(API_TOKEN_PREFIX)) {
      return new DomainError('TOKEN_INVALID', 'Authorization must be "Bearer <API token>".');
    }
    return { kind: 'apiToken', token: match[1] };
  }
  const session = parseCookies(cookie).get(SESSION_COOKIE);
  return session ? { kind: 'session', token: session } : null;
}

/** Presents the credential to the auth service. Refusals are kept, not thrown: they matter only to fields that need a user. */
export async function createRequestContext(
  services: Services,
  source: CredentialSource,
  options: { responseCookies: string[] | null; secureCookies: boolean; clientAddress: string | null },
): Promise<RequestContext> {
  const context: RequestContext = { services, viewer: null, authError: null, ...options };
  const credential = readCredential(source);
  if (credential instanceof DomainError) {
    context.authError = credential;
  } else if (credential) {
    try {
      context.viewer = await services.auth.authenticate(credential);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      context.authError = error;
    }
  }
  return context;
}

/**
 * The context for a request arriving over node:http: an HTTP request, or the upgrade request of a
 * WebSocket with its `connectionParams`. The session cookie counts only from an allowed Origin.
 */
export async function contextForRequest(
  services: Services,
  policy: OriginPolicy,
  req: IncomingMessage,
  options: { connectionParams?: Readonly<Record<string, unknown>> | undefined; responseCookies: string[] | null },
): Promise<RequestContext> {
  const encrypted = Boolean((req.socket as TLSSocket).encrypted);
  const params = options.connectionParams;
  const fromParams = params?.['authorization'] ?? params?.['Authorization'];
  const authorization = req.headers.authorization ?? (typeof fromParams === 'string' ? fromParams : undefined);
  const cookieAllowed = originAllowed(req.headers, encrypted, policy);
  const context = await createRequestContext(
    services,
    { authorization, cookie: cookieAllowed ? req.headers.cookie : undefined },
    { responseCookies: options.responseCookies, secureCookies: secureCookies(req.headers, policy), clientAddress: clientAddress(req, policy.trustProxy) },
  );
  if (!cookieAllowed && !context.viewer && !context.authError && readCredential({ cookie: req.headers.cookie })) {
    context.authError = new DomainError('ORIGIN_NOT_ALLOWED');
  }
  return context;
}
