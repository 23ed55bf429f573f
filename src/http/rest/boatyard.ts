// boatyard's REST surface under /api/v1: start a build (JSON, or multipart with the tarball first and
// the JSON manifest second), read its status and its logs. boatyard had no accounts; these routes take
// an API token (Authorization: Bearer). A boatyard job is a Dockyard build: `JobIdentifier` is the
// build id (a string, as boatyard's were), pushed to settings.boatyardRegistry with the request's login.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Build } from '../../domain/builds/build.entity.ts';
import type { BuildSourceInput } from '../../domain/builds/builds.service.ts';
import { DomainError } from '../../domain/errors.ts';
import { asServiceUnavailable } from '../../db/availability.ts';
import type { User } from '../../domain/users/user.entity.ts';
import type { RestSettings } from '../../config.ts';
import { contextForRequest, type Services } from '../context.ts';
import type { OriginPolicy } from '../origins.ts';
import { BodyError, incomingFile, readBody, type BodyLimits, type RequestBody, type SpooledFile } from './body.ts';
import { checkInput } from '../input-guard.ts';
import { checkUrlInput, matchRoute, pattern, sendJson, type Route } from './http.ts';

const PREFIX = '/api/v1';
const INSUFFICIENT = 'Insufficient Information.  Must provide at least an Image Name and a Dockerfile/Tarurl.';
const UNKNOWN_JOB = "Jobid doesn't exist in the cache.  Bad request.";
/** The JSON manifest of a multipart request is read into memory: it is small. */
const MANIFEST_MAX = 64 * 1024;
const LOG_PAGE = 5000;

/** An error answered as `{"Error": "<message>"}` (go-json-rest's rest.Error). */
class BoatyardError extends Error {
  override name = 'BoatyardError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface BoatyardCall {
  req: IncomingMessage;
  services: Services;
  settings: RestSettings;
  limits: BodyLimits;
  user: User;
  params: string[];
  /** Set when the handler read a body, so that its spooled files are removed. */
  body?: RequestBody;
}

type BoatyardHandler = (call: BoatyardCall) => Promise<unknown>;

const ROUTES: Route<BoatyardHandler>[] = [
  { method: 'POST', pattern: pattern('/build'), handler: startBuild },
  { method: 'GET', pattern: pattern('/:name/status'), handler: buildStatus },
  { method: 'GET', pattern: pattern('/:name/logs'), handler: buildLogs },
];

export interface BoatyardOptions {
  services: Services;
  policy: OriginPolicy;
  settings: RestSettings;
  limits: BodyLimits;
}

export function boatyardRouter({ services, policy, settings, limits }: BoatyardOptions) {
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    if (pathname !== PREFIX && !pathname.startsWith(`${PREFIX}/`)) return false;
    const match = matchRoute(ROUTES, req.method ?? 'GET', pathname.slice(PREFIX.length) || '/');
    if (match === null || match === 'method-not-allowed') {
      sendJson(res, match === null ? 404 : 405, { Error: match === null ? 'Resource not found' : 'Method not allowed' });
      return true;
    }
    let call: BoatyardCall | undefined;
    try {
      checkUrlInput(match.params, new URL(req.url ?? '/', 'http://localhost').searchParams);
      const context = await contextForRequest(services, policy, req, { responseCookies: null });
      if (!context.viewer) throw new BoatyardError(401, `${(context.authError ?? new DomainError('UNAUTHENTICATED')).message} Send an API token: "Authorization: Bearer <token>".`);
      call = { req, services, settings, limits, user: context.viewer.user, params: match.params };
      sendJson(res, 200, await match.route.handler(call));
    } catch (error) {
      const unavailable = asServiceUnavailable(error);
      if (unavailable) sendJson(res, 503, { Error: unavailable.message }, { 'retry-after': String(unavailable.retryAfterSeconds) });
      else {
        const { status, message } = errorOf(error);
        sendJson(res, status, { Error: message });
      }
    } finally {
      await call?.body?.dispose();
    }
    return true;
  };
}

/** `POST /api/v1/build` → `{"JobIdentifier": "<build id>"}`. boatyard always built without cache; so does this. */
async function startBuild(call: BoatyardCall): Promise<unknown> {
  const { services, settings, user } = call;
  const { manifest, tarball } = await readRequest(call);
  const imageName = manifest.get('image_name') ?? '';
  const dockerfile = manifest.get('dockerfile');
  const tarUrl = manifest.get('tar_url');
  const repo = manifest.get('github_reponame');
  if (imageName === '' || !(dockerfile || tarball || tarUrl || repo)) throw new BoatyardError(400, INSUFFICIENT);
  const { name, tag } = imageOf(imageName);
  // boatyard's precedence: dockerfile, then the uploaded tarball, then tar_url, then GitHub.
  let source: BuildSourceInput;
  if (dockerfile) source = { kind: 'DOCKERFILE', dockerfile, files: [] };
  else if (tarball) source = { kind: 'TARBALL', file: incomingFile(tarball) };
  else if (tarUrl) source = { kind: 'TARBALL_URL', url: tarUrl };
  else source = { kind: 'GIT', url: gitUrl(settings, manifest.get('github_username') ?? '', repo!), ref: manifest.get('github_tag') || null };
  const username = manifest.get('username') || null;
  const password = manifest.get('password') || null;
  const build = await services.builds.start(user, {
    imageName: name,
    tags: tag ? [tag] : null,
    source,
    noCache: true,
    // Pushed where boatyard pushed: `image_name` in the registry, with the request's credentials (when
    // the operator names a registry: Docker Hub, boatyard's, is refused, its names being local ones).
    push: settings.boatyardRegistry ? { registry: settings.boatyardRegistry, repository: repositoryOf(imageName), username, password } : null,
  });
  return { JobIdentifier: String(build.id) };
}

/** `"Building"` (queued, fetching or building), `"Pushing"`, `"Finished"`, or `"Failed: <why>"`. */
async function buildStatus({ services, user, params: [id] }: BoatyardCall): Promise<unknown> {
  const build = await buildOf(services, user, id!);
  return { Status: statusOf(build) };
}

/** `"Fetching logs..."` and then every line of the build's output (its error, when it failed, is the last line). */
async function buildLogs({ services, user, params: [id] }: BoatyardCall): Promise<unknown> {
  const build = await buildOf(services, user, id!);
  let logs = 'Fetching logs...\n';
  for (let after = 0; ; ) {
    const page = await services.builds.readLogs(user, build.id, after, LOG_PAGE);
    logs += page.map((line) => `${line.text}\n`).join('');
    if (page.length < LOG_PAGE) return { Logs: logs };
    after = page.at(-1)!.seq;
  }
}

function statusOf(build: Build): string {
  if (build.state === 'QUEUED') return 'Building';
  if (build.state === 'RUNNING') return build.phase === 'PUSHING' ? 'Pushing' : 'Building';
  if (build.state === 'SUCCEEDED') return 'Finished';
  return `Failed: ${build.error ?? build.state}`;
}

async function buildOf(services: Services, user: User, id: string): Promise<Build> {
  if (!/^\d{1,10}$/.test(id)) throw new BoatyardError(404, UNKNOWN_JOB);
  try {
    return await services.builds.get(user, Number(id));
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') throw new BoatyardError(404, UNKNOWN_JOB);
    throw error;
  }
}

/**
 * The manifest (keys matched case-insensitively, as Go's encoding/json did) and the uploaded tarball.
 * Multipart: the first file is the tarball and the next part (a file or a field) is the manifest, whatever their names.
 */
async function readRequest(call: BoatyardCall): Promise<{ manifest: Map<string, string>; tarball: SpooledFile | undefined }> {
  const body = await readBody(call.req, { ...call.limits, alwaysJson: true });
  call.body = body;
  const multipart = (call.req.headers['content-type'] ?? '').toLowerCase().includes('multipart');
  if (!multipart) return { manifest: lowerKeys(body.parts.flatMap((p): [string, string][] => (p.kind === 'field' ? [[p.name, p.value]] : []))), tarball: undefined };
  const tarballAt = body.parts.findIndex((part) => part.kind === 'file');
  const tarball = body.parts[tarballAt];
  const manifestPart = body.parts.find((_, i) => i !== tarballAt);
  if (!manifestPart) return { manifest: new Map(), tarball: tarball?.kind === 'file' ? tarball : undefined };
  const text = manifestPart.kind === 'field' ? manifestPart.value : await readManifestFile(manifestPart);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BoatyardError(400, (error as Error).message);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BoatyardError(400, 'The manifest must be a JSON object.');
  checkInput(parsed, []);
  const pairs = Object.entries(parsed).filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean').map(([k, v]): [string, string] => [k, String(v)]);
  return { manifest: lowerKeys(pairs), tarball: tarball?.kind === 'file' ? tarball : undefined };
}

async function readManifestFile(file: SpooledFile): Promise<string> {
  if (file.size > MANIFEST_MAX) throw new BoatyardError(400, `The JSON manifest is larger than ${MANIFEST_MAX} bytes.`);
  return readFile(file.path, 'utf8');
}

function lowerKeys(pairs: [string, string][]): Map<string, string> {
  const map = new Map<string, string>();
  for (const [key, value] of pairs) if (!map.has(key.toLowerCase())) map.set(key.toLowerCase(), value);
  return map;
}

/**
 * boatyard's `image_name` (`[registry/]user/image[:tag]`) as a Dockyard image: its last path segment,
 * lower-cased, with its tag. The repository itself is always `<namespace>/<login>/<image>` on
 * settings.boatyardRegistry: nobody writes into another user's repository.
 */
function imageOf(imageName: string): { name: string; tag: string | null } {
  const last = imageName.trim().split('/').pop() ?? '';
  const colon = last.lastIndexOf(':');
  return colon > 0 ? { name: last.slice(0, colon).toLowerCase(), tag: last.slice(colon + 1) } : { name: last.toLowerCase(), tag: null };
}

/**
 * A GitHub-style owner or repository name: letters, digits, `-`, `_` and `.`, at most 100, not starting
 * with `-`, never `.` nor holding `..`. So no `/`, `\`, `%` (no encoded separators either) or dot segment.
 */
const GIT_NAME = /^(?!-)(?!\.$)(?!.*\.\.)[A-Za-z0-9._-]{1,100}$/;

/**
 * `<BOATYARD_GIT_BASE_URL>/<user>/<repo>.git`, from names that cannot leave the base: each must be a
 * GIT_NAME, and the URL, built with the URL parser, must still be on the base's origin and under its path.
 */
function gitUrl(settings: RestSettings, user: string, repo: string): string {
  if (user === '') throw new BoatyardError(400, 'github_username is needed with github_reponame.');
  for (const [field, value] of [['github_username', user], ['github_reponame', repo]] as const) {
    if (!GIT_NAME.test(value)) {
      throw new BoatyardError(400, `${field} must be 1 to 100 letters, digits, "-", "_" or "." (not starting with "-", not "." and without ".."); got ${JSON.stringify(value.slice(0, 100))}.`);
    }
  }
  const base = new URL(settings.boatyardGitBaseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(base.href);
  url.pathname = `${basePath}/${user}/${repo}.git`;
  const parsed = new URL(url.href);
  if (parsed.origin !== base.origin || !parsed.pathname.startsWith(`${basePath}/`) || parsed.pathname !== `${basePath}/${user}/${repo}.git`) {
    throw new BoatyardError(400, 'github_username and github_reponame must name a repository under BOATYARD_GIT_BASE_URL.');
  }
  return parsed.href;
}

function errorOf(error: unknown): { status: number; message: string } {
  if (error instanceof BoatyardError) return { status: error.status, message: error.message };
  if (error instanceof BodyError) return { status: error.status, message: error.message };
  if (error instanceof DomainError) {
    if (error.code === 'NOT_FOUND') return { status: 404, message: error.message };
    if (error.code === 'TOO_LARGE') return { status: 413, message: error.message };
    return { status: 400, message: error.field === 'imageName' ? `image_name: ${error.message}` : error.message };
  }
  throw error;
}

/** `user/image:tag` → `user/image` (lower-case), the repository the registry login may push to. */
function repositoryOf(imageName: string): string {
  return imageName.trim().toLowerCase().replace(/:[^/]*$/, '');
}
