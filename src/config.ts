// Parses the environment into a typed, validated configuration.
// Every setting is listed in SETTINGS (name, default, description): the README's table is that list.
import os from 'node:os';
import path from 'node:path';
import { isDockerHub, parseReference } from './domain/builds/dockerfile/reference.ts';

export interface GraphqlLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  maxDirectives: number;
}

export interface Config {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  /** Where users reach the service; decides the Secure cookie flag and the default allowed Origin. */
  publicUrl: URL;
  dataDir: string;
  /** A postgres:// URL, or null for the embedded PGlite database under dataDir. */
  databaseUrl: string | null;
  /** A redis:// URL, or null for in-process pub/sub (one instance only). */
  redisUrl: string | null;
  /** Docker engine address: unix socket path or tcp://host:port. */
  dockerHost: string;
  /** How long a job or build about to start waits for an engine that does not answer (0: it fails at once). */
  engineWaitSeconds: number;
  graphiql: boolean;
  allowedOrigins: string[];
  trustProxy: boolean;
  sessionTtlMs: number;
  confirmationTtlMs: number;
  allowUnconfirmedLogin: boolean;
  passwordMinLength: number;
  /** Login attempts allowed per login (failed ones) and per client address (all) in each window; 0: no limit. */
  loginRateLimit: { attempts: number; windowSeconds: number };
  graphqlLimits: GraphqlLimits;
  shutdownGraceMs: number;
  /** Names this instance's queue worker; a restart with the same id releases what a crash left locked. */
  instanceId: string;
  /** 32 bytes that encrypt stored registry credentials; null: a key file under dataDir (one instance only). */
  secretKey: Buffer | null;
  builds: BuildSettings;
  jobs: JobSettings;
  rest: RestSettings;
}

export interface RestSettings {
  /** Path prefix of Kabuto's routes (`''`: at the root, as Kabuto had them). */
  kabutoPrefix: string;
  /** Where boatyard's `github_username`/`github_reponame` point: `<base>/<user>/<repo>.git`. */
  boatyardGitBaseUrl: string;
  /** Registry boatyard builds are pushed to, with the credentials of the request. */
  /** Where boatyard builds are pushed (as their `image_name`); null: they are built, not pushed. */
  boatyardRegistry: string | null;
}

export interface JobSettings {
  concurrency: number;
  /** Ceilings a job may ask up to; also the defaults. */
  timeoutSeconds: number;
  memoryBytes: number;
  cpus: number;
  pidsLimit: number;
  tmpBytes: number;
  stopGraceSeconds: number;
  logMaxBytes: number;
  outboxMaxBytes: number;
  outboxMaxFiles: number;
  maxAttachments: number;
  /** How often the job containers and volumes this instance left on the engine are looked for and removed (0: only at start). */
  cleanupIntervalSeconds: number;
}

export interface BuildSettings {
  /** Generated image repositories are `<namespace>/<login>/<image name>`. */
  namespace: string;
  /** Images every user may build on (`FROM`, `COPY --from`), as the operator names them on the engine. */
  baseImages: string[];
  concurrency: number;
  timeoutSeconds: number;
  memoryBytes: number;
  cpus: number;
  /** Docker network for RUN steps: `none` (default) or a network the operator created. */
  network: string;
  /** Hosts and CIDRs that tarball URLs, repositories and registries may use even though they are private. */
  allowedHosts: string[];
  allowPrivateAddresses: boolean;
  uploadMaxBytes: number;
  contextMaxBytes: number;
  logMaxBytes: number;
  sourceTimeoutSeconds: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface Setting {
  name: string;
  default: string;
  description: string;
}

/** Every environment variable the service reads. */
export const SETTINGS: Setting[] = [
  { name: 'NODE_ENV', default: 'development', description: '`development`, `production` or `test`. Production turns GraphiQL and introspection off unless `GRAPHIQL` says otherwise.' },
  { name: 'HOST', default: '127.0.0.1', description: 'Interface to listen on (`0.0.0.0` in the container image).' },
  { name: 'PORT', default: '4000', description: 'HTTP and WebSocket port; `0` picks a free one.' },
  { name: 'PUBLIC_URL', default: 'http://localhost:$PORT', description: 'The URL users reach the service at. `https://` makes session cookies `Secure`; its origin is always an allowed Origin.' },
  { name: 'DATA_DIR', default: './data', description: 'Where the embedded database (and later build contexts and job results) live.' },
  { name: 'DATABASE_URL', default: '(unset: embedded PGlite in `$DATA_DIR/pglite`)', description: 'PostgreSQL URL, `postgres://user@host:5432/db`. Migrations run at start.' },
  { name: 'REDIS_URL', default: '(unset: in-process pub/sub)', description: 'Redis URL, `redis://host:6379`. Needed when more than one instance runs.' },
  { name: 'DOCKER_HOST', default: 'unix:///var/run/docker.sock', description: 'Docker engine address (`unix://path` or `tcp://host:port`).' },
  { name: 'ENGINE_WAIT_SECONDS', default: '60', description: 'How long a job or build about to start waits for an engine that does not answer (restarting, socket missing: retried with a short backoff) before it ends `ERRORED` saying so; `0` does not wait.' },
  { name: 'GRAPHIQL', default: 'on unless NODE_ENV=production', description: 'Serve GraphiQL at `/graphql` in browsers, and allow introspection.' },
  { name: 'ALLOWED_ORIGINS', default: '(only PUBLIC_URL and same-origin)', description: 'Comma-separated extra origins whose pages may use the session cookie (HTTP and WebSocket).' },
  { name: 'TRUST_PROXY', default: 'false', description: 'Trust `X-Forwarded-Proto`/`X-Forwarded-Host` from a reverse proxy (cookie `Secure` flag, same-origin check), and the last address of `X-Forwarded-For` as the client (login rate limit).' },
  { name: 'SESSION_TTL_HOURS', default: '720', description: 'Lifetime of a login session (30 days).' },
  { name: 'CONFIRMATION_TTL_HOURS', default: '48', description: 'Lifetime of an account confirmation token.' },
  { name: 'ALLOW_UNCONFIRMED_LOGIN', default: 'false', description: 'Whether an account may log in before it is confirmed.' },
  { name: 'PASSWORD_MIN_LENGTH', default: '8', description: 'Shortest accepted password (characters, at least 8).' },
  { name: 'LOGIN_RATE_LIMIT', default: '10', description: 'Login attempts per window: failed ones per login, and all of them per client address; past it logins answer `TOO_MANY_REQUESTS` (429). `0` turns the limit off.' },
  { name: 'LOGIN_RATE_WINDOW_SECONDS', default: '60', description: 'The window of `LOGIN_RATE_LIMIT`, starting at a bucket\'s first attempt. Counted in Redis when `REDIS_URL` is set (shared by instances), else in the process.' },
  { name: 'GRAPHQL_MAX_DEPTH', default: '10', description: 'Deepest selection a GraphQL operation may have.' },
  { name: 'GRAPHQL_MAX_ALIASES', default: '15', description: 'Most aliases in one operation.' },
  { name: 'GRAPHQL_MAX_COST', default: '5000', description: 'Highest computed cost of one operation (graphql-armor cost limit).' },
  { name: 'GRAPHQL_MAX_TOKENS', default: '1000', description: 'Most tokens in one operation document.' },
  { name: 'GRAPHQL_MAX_DIRECTIVES', default: '50', description: 'Most directives in one operation.' },
  { name: 'SHUTDOWN_GRACE_MS', default: '10000', description: 'On SIGTERM, how long in-flight requests may take before connections are cut.' },
  { name: 'INSTANCE_ID', default: '(the host name)', description: 'Names this instance in the work queue. Keep it stable across restarts and unique per instance.' },
  { name: 'SECRET_KEY', default: '(unset: generated into `$DATA_DIR/secret.key`)', description: '32 bytes, base64: encrypts stored registry passwords. Set the same value on every instance.' },
  { name: 'IMAGE_NAMESPACE', default: 'dockyard', description: 'Image repositories are named `<namespace>/<login>/<image>`.' },
  { name: 'BUILD_BASE_IMAGES', default: 'busybox:latest,alpine:latest,debian:stable-slim,ubuntu:latest', description: 'Comma-separated images on the engine that every user may build on (`FROM`, `COPY --from`), besides their own; resolved to image ids at start and again at most a minute before use. Missing ones are logged and refused.' },
  { name: 'BUILD_CONCURRENCY', default: '2', description: 'Builds that run at once on this instance; `0` makes an API-only instance that runs none.' },
  { name: 'BUILD_TIMEOUT_SECONDS', default: '3600', description: 'Longest a build may run (and the ceiling for a build\'s own timeout).' },
  { name: 'BUILD_MEMORY_MB', default: '4096', description: 'Memory limit of each build step.' },
  { name: 'BUILD_CPUS', default: '2', description: 'CPU limit of each build step.' },
  { name: 'BUILD_NETWORK', default: 'none', description: 'Network of build steps: `none`, or a Docker network the operator made (never `host`).' },
  { name: 'SOURCE_ALLOWED_HOSTS', default: '(none)', description: 'Comma-separated hosts, IPs or CIDRs that tarball URLs, repositories and registries may use although private.' },
  { name: 'SOURCE_ALLOW_PRIVATE', default: 'false', description: 'Allow private, loopback and link-local addresses for every source and registry.' },
  { name: 'UPLOAD_MAX_MB', default: '100', description: 'Largest uploaded file or downloaded tarball.' },
  { name: 'BUILD_LOG_MAX_MB', default: '10', description: 'Output stored per build; past it the build goes on and one line says the rest is not kept.' },
  { name: 'CONTEXT_MAX_MB', default: '1024', description: 'Largest build context once unpacked.' },
  { name: 'JOB_CONCURRENCY', default: '2', description: 'Jobs that run at once on this instance; `0` runs none.' },
  { name: 'JOB_TIMEOUT_SECONDS', default: '3600', description: 'Longest a job may run, and the default.' },
  { name: 'JOB_MEMORY_MB', default: '2048', description: 'Most memory a job may ask for, and the default.' },
  { name: 'JOB_CPUS', default: '1', description: 'Most CPUs a job may ask for, and the default.' },
  { name: 'JOB_PIDS_LIMIT', default: '256', description: 'Most processes in a job container.' },
  { name: 'JOB_TMP_MB', default: '256', description: 'Size of the writable `/tmp` of a job.' },
  { name: 'JOB_STOP_GRACE_SECONDS', default: '10', description: 'Between SIGTERM and SIGKILL when a job is canceled or times out.' },
  { name: 'JOB_LOG_MAX_MB', default: '10', description: 'Output stored per job; past it the job runs on, a truncation line is added and `logTruncated` is set.' },
  { name: 'OUTBOX_MAX_MB', default: '1024', description: 'Most a job may leave in `/outbox` (larger: the job fails).' },
  { name: 'OUTBOX_MAX_FILES', default: '10000', description: 'Most files a job may leave in `/outbox`.' },
  { name: 'JOB_MAX_ATTACHMENTS', default: '20', description: 'Most attachments per job (each at most `UPLOAD_MAX_MB`).' },
  { name: 'JOB_CLEANUP_INTERVAL_SECONDS', default: '300', description: 'How often an instance removes the job containers and volumes it left on the engine whose job no longer runs here (a removal that failed while the engine was away); also done at start. `0`: only at start.' },
  { name: 'KABUTO_PREFIX', default: '(none)', description: "Path prefix for Kabuto's REST routes, e.g. `/kabuto`; by default they are at the root, as in Kabuto." },
  { name: 'BOATYARD_GIT_BASE_URL', default: 'https://github.com', description: "boatyard's `github_username`/`github_reponame` become `<this>/<user>/<repo>.git`." },
  { name: 'BOATYARD_REGISTRY', default: '(unset: boatyard builds are not pushed)', description: 'Registry that boatyard builds are pushed to (as their `image_name`), with the credentials the request gives: a host with a dot or a port, or `localhost`; not Docker Hub, whose names are the engine\'s local names.' },
  { name: 'SOURCE_TIMEOUT_SECONDS', default: '300', description: 'Longest a download, git fetch or hg clone may take.' },
];

type Env = Record<string, string | undefined>;

export function parseConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };

  const nodeEnv = read('NODE_ENV') ?? 'development';
  if (nodeEnv !== 'development' && nodeEnv !== 'production' && nodeEnv !== 'test') {
    throw new ConfigError(`NODE_ENV must be development, production or test (got "${nodeEnv}")`);
  }
  const port = integer(read('PORT'), 'PORT', 4000, 0, 65535);
  const publicUrl = url(read('PUBLIC_URL') ?? `http://localhost:${port}`, 'PUBLIC_URL', ['http:', 'https:']);
  const databaseUrl = read('DATABASE_URL');
  if (databaseUrl !== undefined) url(databaseUrl, 'DATABASE_URL', ['postgres:', 'postgresql:'], true);
  const redisUrl = read('REDIS_URL');
  if (redisUrl !== undefined) url(redisUrl, 'REDIS_URL', ['redis:', 'rediss:'], true);
  const dockerHost = read('DOCKER_HOST') ?? 'unix:///var/run/docker.sock';
  if (!/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+\/?)$/.test(dockerHost)) {
    throw new ConfigError(`DOCKER_HOST must look like unix:///var/run/docker.sock or tcp://host:2375 (got "${dockerHost}")`);
  }
  const allowedOrigins = (read('ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map((o) => url(o, 'ALLOWED_ORIGINS', ['http:', 'https:']).origin);

  return {
    env: nodeEnv,
    host: read('HOST') ?? '127.0.0.1',
    port,
    publicUrl,
    dataDir: path.resolve(cwd, read('DATA_DIR') ?? 'data'),
    databaseUrl: databaseUrl ?? null,
    redisUrl: redisUrl ?? null,
    dockerHost,
    engineWaitSeconds: integer(read('ENGINE_WAIT_SECONDS'), 'ENGINE_WAIT_SECONDS', 60, 0, 86_400),
    graphiql: boolean(read('GRAPHIQL'), 'GRAPHIQL', nodeEnv !== 'production'),
    allowedOrigins: [publicUrl.origin, ...allowedOrigins],
    trustProxy: boolean(read('TRUST_PROXY'), 'TRUST_PROXY', false),
    sessionTtlMs: integer(read('SESSION_TTL_HOURS'), 'SESSION_TTL_HOURS', 720, 1, 24 * 365) * 3600_000,
    confirmationTtlMs: integer(read('CONFIRMATION_TTL_HOURS'), 'CONFIRMATION_TTL_HOURS', 48, 1, 24 * 365) * 3600_000,
    allowUnconfirmedLogin: boolean(read('ALLOW_UNCONFIRMED_LOGIN'), 'ALLOW_UNCONFIRMED_LOGIN', false),
    passwordMinLength: integer(read('PASSWORD_MIN_LENGTH'), 'PASSWORD_MIN_LENGTH', 8, 8, 128),
    loginRateLimit: {
      attempts: integer(read('LOGIN_RATE_LIMIT'), 'LOGIN_RATE_LIMIT', 10, 0, 1_000_000),
      windowSeconds: integer(read('LOGIN_RATE_WINDOW_SECONDS'), 'LOGIN_RATE_WINDOW_SECONDS', 60, 1, 86_400),
    },
    graphqlLimits: {
      maxDepth: integer(read('GRAPHQL_MAX_DEPTH'), 'GRAPHQL_MAX_DEPTH', 10, 1, 100),
      maxAliases: integer(read('GRAPHQL_MAX_ALIASES'), 'GRAPHQL_MAX_ALIASES', 15, 0, 1000),
      maxCost: integer(read('GRAPHQL_MAX_COST'), 'GRAPHQL_MAX_COST', 5000, 1, 1_000_000),
      maxTokens: integer(read('GRAPHQL_MAX_TOKENS'), 'GRAPHQL_MAX_TOKENS', 1000, 10, 100_000),
      maxDirectives: integer(read('GRAPHQL_MAX_DIRECTIVES'), 'GRAPHQL_MAX_DIRECTIVES', 50, 0, 1000),
    },
    shutdownGraceMs: integer(read('SHUTDOWN_GRACE_MS'), 'SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    instanceId: read('INSTANCE_ID') ?? os.hostname(),
    secretKey: secretKey(read('SECRET_KEY')),
    builds: {
      namespace: namespace(read('IMAGE_NAMESPACE') ?? 'dockyard'),
      baseImages: baseImages(read('BUILD_BASE_IMAGES') ?? 'busybox:latest,alpine:latest,debian:stable-slim,ubuntu:latest'),
      concurrency: integer(read('BUILD_CONCURRENCY'), 'BUILD_CONCURRENCY', 2, 0, 64),
      timeoutSeconds: integer(read('BUILD_TIMEOUT_SECONDS'), 'BUILD_TIMEOUT_SECONDS', 3600, 10, 86_400),
      memoryBytes: integer(read('BUILD_MEMORY_MB'), 'BUILD_MEMORY_MB', 4096, 16, 1_048_576) * 2 ** 20,
      cpus: integer(read('BUILD_CPUS'), 'BUILD_CPUS', 2, 1, 256),
      network: buildNetwork(read('BUILD_NETWORK') ?? 'none'),
      allowedHosts: list(read('SOURCE_ALLOWED_HOSTS')),
      allowPrivateAddresses: boolean(read('SOURCE_ALLOW_PRIVATE'), 'SOURCE_ALLOW_PRIVATE', false),
      uploadMaxBytes: integer(read('UPLOAD_MAX_MB'), 'UPLOAD_MAX_MB', 100, 1, 1_048_576) * 2 ** 20,
      contextMaxBytes: integer(read('CONTEXT_MAX_MB'), 'CONTEXT_MAX_MB', 1024, 1, 1_048_576) * 2 ** 20,
      logMaxBytes: integer(read('BUILD_LOG_MAX_MB'), 'BUILD_LOG_MAX_MB', 10, 1, 1_048_576) * 2 ** 20,
      sourceTimeoutSeconds: integer(read('SOURCE_TIMEOUT_SECONDS'), 'SOURCE_TIMEOUT_SECONDS', 300, 5, 86_400),
    },
    rest: {
      kabutoPrefix: prefix(read('KABUTO_PREFIX') ?? ''),
      boatyardGitBaseUrl: url(read('BOATYARD_GIT_BASE_URL') ?? 'https://github.com', 'BOATYARD_GIT_BASE_URL', ['http:', 'https:'], true).href.replace(/\/$/, ''),
      boatyardRegistry: boatyardRegistry(read('BOATYARD_REGISTRY')),
    },
    jobs: {
      concurrency: integer(read('JOB_CONCURRENCY'), 'JOB_CONCURRENCY', 2, 0, 256),
      timeoutSeconds: integer(read('JOB_TIMEOUT_SECONDS'), 'JOB_TIMEOUT_SECONDS', 3600, 1, 7 * 86_400),
      memoryBytes: integer(read('JOB_MEMORY_MB'), 'JOB_MEMORY_MB', 2048, 8, 1_048_576) * 2 ** 20,
      cpus: integer(read('JOB_CPUS'), 'JOB_CPUS', 1, 1, 256),
      pidsLimit: integer(read('JOB_PIDS_LIMIT'), 'JOB_PIDS_LIMIT', 256, 8, 65_536),
      tmpBytes: integer(read('JOB_TMP_MB'), 'JOB_TMP_MB', 256, 1, 1_048_576) * 2 ** 20,
      stopGraceSeconds: integer(read('JOB_STOP_GRACE_SECONDS'), 'JOB_STOP_GRACE_SECONDS', 10, 0, 3600),
      logMaxBytes: integer(read('JOB_LOG_MAX_MB'), 'JOB_LOG_MAX_MB', 10, 1, 1_048_576) * 2 ** 20,
      outboxMaxBytes: integer(read('OUTBOX_MAX_MB'), 'OUTBOX_MAX_MB', 1024, 1, 1_048_576) * 2 ** 20,
      outboxMaxFiles: integer(read('OUTBOX_MAX_FILES'), 'OUTBOX_MAX_FILES', 10_000, 1, 1_000_000),
      maxAttachments: integer(read('JOB_MAX_ATTACHMENTS'), 'JOB_MAX_ATTACHMENTS', 20, 0, 1000),
      cleanupIntervalSeconds: integer(read('JOB_CLEANUP_INTERVAL_SECONDS'), 'JOB_CLEANUP_INTERVAL_SECONDS', 300, 0, 86_400),
    },
  };
}

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function prefix(raw: string): string {
  if (raw === '' || raw === '/') return '';
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(raw)) throw new ConfigError(`KABUTO_PREFIX must look like /kabuto (got "${raw}")`);
  return raw;
}

function secretKey(raw: string | undefined): Buffer | null {
  if (raw === undefined) return null;
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new ConfigError('SECRET_KEY must be 32 bytes in base64 (make one with `openssl rand -base64 32`)');
  return key;
}

function namespace(raw: string): string {
  // No dot: a first name component with one would be read by the engine as a registry host.
  if (!/^[a-z0-9]+(?:[_-][a-z0-9]+)*$/.test(raw)) {
    throw new ConfigError(`IMAGE_NAMESPACE must be lower-case letters and digits, with _ or - between them (got "${raw}")`);
  }
  return raw;
}

function boatyardRegistry(raw: string | undefined): string | null {
  if (raw === undefined || raw.trim() === '') return null;
  const registry = raw.trim().toLowerCase();
  const parsed = parseReference(`${registry}/x`);
  if (!parsed || parsed.domain !== registry || isDockerHub(registry)) {
    throw new ConfigError(`BOATYARD_REGISTRY must be a registry host with a dot or a port, or localhost, and not Docker Hub (got "${raw}")`);
  }
  return registry;
}

function baseImages(raw: string): string[] {
  const references = list(raw);
  for (const reference of references) {
    const parsed = parseReference(reference);
    if (!parsed || parsed.digest) throw new ConfigError(`BUILD_BASE_IMAGES: "${reference}" is not an image reference such as busybox:latest`);
  }
  return references;
}

function buildNetwork(raw: string): string {
  if (raw === 'host' || raw === 'bridge' || raw.startsWith('container:')) {
    throw new ConfigError(`BUILD_NETWORK must be none or a network made for builds, not "${raw}"`);
  }
  return raw;
}

function integer(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max} (got ${value})`);
  return value;
}

function boolean(raw: string | undefined, name: string, fallback: boolean): boolean {
  if (raw === undefined) return fallback;
  const value = raw.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`${name} must be true or false (got "${raw}")`);
}

function url(raw: string, name: string, protocols: string[], needsHost = false): URL {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL (got "${redact(raw)}"); expected ${protocols[0]}//…`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')} (got "${redact(raw)}")`);
  }
  if (needsHost && parsed.hostname === '') throw new ConfigError(`${name} has no host (got "${redact(raw)}")`);
  return parsed;
}

/** Hides a password in a URL before it is printed. */
export function redact(raw: string): string {
  return raw.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}
