// Kabuto's REST surface at its own paths (under settings.kabutoPrefix, none by default): the route
// table, and the one place where a handler's answer or error becomes Kabuto's wire shape.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Viewer } from '../../auth/auth.service.ts';
import { asServiceUnavailable } from '../../db/availability.ts';
import { DomainError, TooManyRequestsError, type ErrorCode } from '../../domain/errors.ts';
import { clientAddress } from '../client-address.ts';
import { contextForRequest, type Services } from '../context.ts';
import { originAllowed, secureCookies, type OriginPolicy } from '../origins.ts';
import { BodyError, readBody, type BodyLimits, type RequestBody } from './body.ts';
import { checkUrlInput, matchRoute, pattern, sendJson, type Route } from './http.ts';
import { confirm, hello, login, logout, register } from './kabuto-accounts.ts';
import { buildStatus, createImage, deleteImage, getImage, listImages, updateImage } from './kabuto-images.ts';
import {
  addJob,
  createPipeline,
  deleteJob,
  deletePipeline,
  getJob,
  getPipeline,
  jobLogs,
  killJob,
  listAllJobs,
  listJobs,
  listPipelines,
  submitPipeline,
  updateJob,
  updatePipeline,
} from './kabuto-pipelines.ts';
import { KabutoError, MissingField, NotLoggedIn, SENT, type JsonReply, type KabutoCall, type KabutoHandler, type KabutoInput } from './kabuto-call.ts';

const ROUTES: Route<KabutoHandler>[] = [
  { method: 'GET', pattern: pattern('/'), handler: hello },
  { method: 'POST', pattern: pattern('/register'), handler: register },
  { method: 'GET', pattern: pattern('/register/confirm/:name/:name'), handler: confirm },
  { method: 'POST', pattern: pattern('/login'), handler: login },
  { method: 'POST', pattern: pattern('/logout'), handler: logout },
  { method: 'GET', pattern: pattern('/image'), handler: listImages },
  { method: 'POST', pattern: pattern('/image'), handler: createImage },
  { method: 'GET', pattern: pattern('/image/:id'), handler: getImage },
  { method: 'PUT', pattern: pattern('/image/:id'), handler: updateImage },
  { method: 'DELETE', pattern: pattern('/image/:id'), handler: deleteImage },
  { method: 'GET', pattern: pattern('/image/build/:id'), handler: buildStatus },
  { method: 'GET', pattern: pattern('/image/build/:id/:id'), handler: buildStatus },
  { method: 'GET', pattern: pattern('/pipeline'), handler: listPipelines },
  { method: 'POST', pattern: pattern('/pipeline'), handler: createPipeline },
  { method: 'GET', pattern: pattern('/pipeline/:id'), handler: getPipeline },
  { method: 'PUT', pattern: pattern('/pipeline/:id'), handler: updatePipeline },
  { method: 'DELETE', pattern: pattern('/pipeline/:id'), handler: deletePipeline },
  { method: 'POST', pattern: pattern('/pipeline/:id/submit'), handler: submitPipeline },
  { method: 'GET', pattern: pattern('/jobs'), handler: listAllJobs },
  { method: 'GET', pattern: pattern('/pipeline/:id/job'), handler: listJobs },
  { method: 'POST', pattern: pattern('/pipeline/:id/job'), handler: addJob },
  { method: 'GET', pattern: pattern('/pipeline/:id/job/:id'), handler: getJob },
  { method: 'PUT', pattern: pattern('/pipeline/:id/job/:id'), handler: updateJob },
  { method: 'DELETE', pattern: pattern('/pipeline/:id/job/:id'), handler: deleteJob },
  { method: 'GET', pattern: pattern('/pipeline/:id/job/:id/kill'), handler: killJob },
  { method: 'GET', pattern: pattern('/execution/:id/logs'), handler: jobLogs },
  { method: 'GET', pattern: pattern('/execution/:id/logs/:id'), handler: jobLogs },
];

export interface KabutoOptions {
  services: Services;
  policy: OriginPolicy;
  /** `''` or `/something`. */
  prefix: string;
  limits: BodyLimits;
}

export function kabutoRouter({ services, policy, prefix, limits }: KabutoOptions) {
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    const local = prefix === '' ? pathname : pathname === prefix ? '/' : pathname.startsWith(`${prefix}/`) ? pathname.slice(prefix.length) : null;
    if (local === null) return false;
    const match = matchRoute(ROUTES, req.method ?? 'GET', local);
    if (match === null) return false;
    if (match === 'method-not-allowed') {
      sendJson(res, 405, { message: 'The method is not allowed for the requested URL.' });
      return true;
    }
    const call = newCall(services, policy, limits, req, res, match.params);
    try {
      checkUrlInput(match.params, call.query);
      const reply = await match.route.handler(call);
      if (reply !== SENT) sendJson(res, reply.status, reply.body, reply.headers);
    } catch (error) {
      if (res.headersSent) {
        console.error('kabuto: the response failed after it started', error);
        res.destroy();
        return true;
      }
      const reply = errorReply(error);
      sendJson(res, reply.status, reply.body, reply.headers);
    } finally {
      await call.dispose();
    }
    return true;
  };
}

function newCall(
  services: Services,
  policy: OriginPolicy,
  limits: BodyLimits,
  req: IncomingMessage,
  res: ServerResponse,
  params: string[],
): KabutoCall & { dispose(): Promise<void> } {
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
  let viewer: Promise<Viewer> | undefined;
  let body: Promise<RequestBody> | undefined;
  const getViewer = () =>
    (viewer ??= contextForRequest(services, policy, req, { responseCookies: null }).then((context) => {
      if (!context.viewer) throw new NotLoggedIn('Unauthorized');
      return context.viewer;
    }));
  const input = async (): Promise<KabutoInput> => {
    const read = await (body ??= readBody(req, limits));
    const value = (name: string) => read.field(name) ?? query.get(name) ?? undefined;
    return {
      required: (name) => {
        const found = value(name);
        if (found === undefined) throw new MissingField(name);
        return found;
      },
      optional: value,
      files: (field) => read.files(field),
    };
  };
  return {
    req,
    res,
    services,
    params,
    query,
    viewer: getViewer,
    user: async () => (await getViewer()).user,
    input,
    secureCookies: secureCookies(req.headers, policy),
    originAllowed: originAllowed(req.headers, Boolean((req.socket as TLSSocket).encrypted), policy),
    clientAddress: clientAddress(req, policy.trustProxy),
    dispose: async () => {
      if (body) await (await body.catch(() => null))?.dispose();
    },
  };
}

const UNAUTHORIZED: readonly ErrorCode[] = [
  'UNAUTHENTICATED', 'SESSION_INVALID', 'SESSION_EXPIRED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_REVOKED',
  'ORIGIN_NOT_ALLOWED', 'INVALID_CREDENTIALS', 'ACCOUNT_NOT_CONFIRMED',
];

/**
 * Kabuto's shapes: 401 `{"status", "message"}`, 400 `{"message"}`, and `200 {"error"}` for what the
 * application refuses; too many login attempts get 429 in the shape of its 401, with Retry-After.
 */
function errorReply(error: unknown): JsonReply {
  if (error instanceof NotLoggedIn) return unauthorized(error.message);
  if (error instanceof TooManyRequestsError) {
    return { status: 429, body: { status: 429, message: error.message }, headers: { 'retry-after': String(error.retryAfterSeconds) } };
  }
  const unavailable = asServiceUnavailable(error);
  if (unavailable) return { status: 503, body: { status: 503, message: unavailable.message }, headers: { 'retry-after': String(unavailable.retryAfterSeconds) } };
  if (error instanceof MissingField) return { status: 400, body: { message: error.message } };
  if (error instanceof BodyError) return { status: error.status, body: { message: error.message } };
  if (error instanceof KabutoError) return { status: 200, body: { error: error.message } };
  if (error instanceof DomainError) {
    if (UNAUTHORIZED.includes(error.code)) return unauthorized('Unauthorized');
    if (error.code === 'NOT_FOUND' || error.code === 'CONFLICT') return { status: 200, body: { error: error.message } };
    if (error.code === 'LOGIN_TAKEN' || error.code === 'EMAIL_TAKEN') return { status: 409, body: { message: error.message } };
    if (error.code === 'TOO_LARGE') return { status: 413, body: { message: error.message } };
    return { status: 400, body: { message: error.message } };
  }
  throw error;
}

function unauthorized(message: string): JsonReply {
  return { status: 401, body: { status: 401, message }, headers: { 'www-authenticate': 'Basic realm="flask-restful"' } };
}
