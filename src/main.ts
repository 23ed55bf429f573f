// The composition root: reads the configuration, opens the database, events and engine, wires the
// services into GraphQL and the HTTP server, and shuts all of it down on SIGTERM/SIGINT.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig, redact, type Config } from './config.ts';
import { openDatabase } from './db/orm.ts';
import { inProcessEvents, redisEvents, type Events } from './events/pubsub.ts';
import { DockerEngine } from './runner/docker/docker-engine.ts';
import type { ContainerEngine } from './runner/engine.ts';
import type { JobRunner } from './runner/jobs.ts';
import { databaseOutage } from './db/availability.ts';
import { EngineAvailability } from './runner/engine-availability.ts';
import { UsersService } from './domain/users/users.service.ts';
import { AuthService } from './auth/auth.service.ts';
import { LoginLimiter } from './auth/login-limiter.ts';
import { createGraphqlHandler, GRAPHQL_PATH } from './graphql/yoga.ts';
import { createHttpServer } from './http/server.ts';
import { createRestRouter } from './http/rest/router.ts';
import type { Services } from './http/context.ts';
import { SecretBox } from './auth/secret-box.ts';
import { LogsService } from './domain/logs/logs.service.ts';
import { ImagesService } from './domain/images/images.service.ts';
import { BUILD_TASK, BuildsService } from './domain/builds/builds.service.ts';
import { BuildRunner } from './domain/builds/build-runner.ts';
import { DEFAULT_CONTEXT_LIMITS } from './domain/builds/context/index.ts';
import { TaskQueue } from './scheduler/queue.ts';
import { JOB_TASK, PipelinesService } from './domain/pipelines/pipelines.service.ts';
import { JobsService } from './domain/jobs/jobs.service.ts';
import { JobExecutor } from './domain/jobs/job-executor.ts';
import { DockerJobRunner } from './runner/docker/docker-job-runner.ts';
import { Worker } from './scheduler/worker.ts';

export interface Dockyard {
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:4000 */
  url: string;
  services: Services;
  close(): Promise<void>;
}

/**
 * The adapters below the domain: the Docker engine (images) and the job runner (containers). Tests may
 * pass fakes (test/support/fake-engine.ts) to check pipeline semantics in milliseconds without Docker.
 */
export interface Adapters {
  engine?: ContainerEngine;
  jobRunner?: JobRunner;
}

export async function startDockyard(config: Config, adapters: Adapters = {}): Promise<Dockyard> {
  const events: Events = config.redisUrl ? await redisEvents(config.redisUrl) : inProcessEvents();
  const orm = await openDatabase(config).catch(async (error: unknown) => {
    await events.close();
    throw error;
  });
  const engine = adapters.engine ?? new DockerEngine(config.dockerHost);
  // Jobs and builds about to start wait for an engine that does not answer (restarting), up to a bound.
  const engineAvailability = new EngineAvailability((signal) => engine.ping(signal), { waitMs: config.engineWaitSeconds * 1000 });

  const secrets = SecretBox.open(config.secretKey, config.dataDir);
  const queue = new TaskQueue(orm, events.bus);
  // Lines that cannot be stored while the database is away wait in memory, then in $DATA_DIR/spool.
  const logs = new LogsService(orm, events.bus, { spoolDir: path.join(config.dataDir, 'spool') });
  const limits = { ...DEFAULT_CONTEXT_LIMITS, maxArchiveBytes: config.builds.uploadMaxBytes, maxExpandedBytes: config.builds.contextMaxBytes };

  const users = new UsersService(orm, config);
  // Login attempts are counted in Redis when there is one (shared by the instances), else in this process.
  const loginLimiter = config.redisUrl ? await LoginLimiter.withRedis(config.redisUrl, config.loginRateLimit) : LoginLimiter.inProcess(config.loginRateLimit);
  const auth = new AuthService(orm, users, events.bus, config.sessionTtlMs, { loginLimiter });
  const images = new ImagesService(orm, engine, secrets);
  const builds = new BuildsService({ engine, instanceId: config.instanceId, orm, bus: events.bus, queue, logs, secrets, settings: config.builds, dataDir: config.dataDir, limits });
  const pipelines = new PipelinesService({ orm, bus: events.bus, queue, dataDir: config.dataDir });
  const jobs = new JobsService({ instanceId: config.instanceId, orm, bus: events.bus, logs, pipelines, settings: config.jobs, uploadMaxBytes: config.builds.uploadMaxBytes, dataDir: config.dataDir });
  const services: Services = { users, auth, images, builds, pipelines, jobs, bus: events.bus };

  const buildRunner = new BuildRunner({ orm, bus: events.bus, engine, logs, builds, secrets, settings: config.builds, dataDir: config.dataDir, limits, engineAvailability });
  const jobExecutor = new JobExecutor({ orm, bus: events.bus, runner: adapters.jobRunner ?? new DockerJobRunner(config.dockerHost), logs, jobs, pipelines, settings: config.jobs, instanceId: config.instanceId, engineAvailability });

  // A concurrency of 0 makes an instance that runs no builds (or jobs): they run on the others.
  const workers = [
    { kind: BUILD_TASK, concurrency: config.builds.concurrency, run: buildRunner.run },
    { kind: JOB_TASK, concurrency: config.jobs.concurrency, run: jobExecutor.run },
  ]
    .filter(({ concurrency }) => concurrency > 0)
    .map(({ kind, concurrency, run }) =>
      new Worker(queue, events.bus, { workerId: `${config.instanceId}/${kind}`, affinity: config.instanceId, concurrency, handlers: { [kind]: run } }),
    );
  buildRunner.start();
  if (config.builds.concurrency > 0) {
    await buildRunner.removeLeftoverPushNames().catch((error: unknown) => console.error('builds: removing names left by interrupted pushes failed', error));
    void builds.bases.refresh().catch((error: unknown) => console.error('builds: resolving the base images failed', error));
  }
  jobExecutor.start();
  if (config.jobs.concurrency > 0) {
    const ended = await jobExecutor.reconcile().catch((error: unknown) => {
      console.error('jobs: reconciling containers failed', error);
      return 0;
    });
    if (ended > 0) console.log(`dockyard: ended ${ended} job(s) left running by an earlier run`);
  }
  await Promise.all(workers.map((worker) => worker.start()));

  const policy = { allowedOrigins: config.allowedOrigins, trustProxy: config.trustProxy, publicUrl: config.publicUrl };
  const yoga = createGraphqlHandler(config, services, policy);
  // REST multipart files wait here until the service reads them.
  const uploadSpool = path.join(config.dataDir, 'uploads');
  mkdirSync(uploadSpool, { recursive: true });
  const http = createHttpServer({
    yoga,
    rest: createRestRouter({
      services,
      policy,
      settings: config.rest,
      uploads: { maxFileBytes: config.builds.uploadMaxBytes, spoolDir: uploadSpool },
    }),
    bus: events.bus,
    services,
    policy,
    checks: {
      database: async () => {
        const result = await orm.checkConnection();
        return { ok: result.ok, detail: result.ok ? (config.databaseUrl ? 'postgresql' : 'pglite') : result.reason };
      },
      redis: async () =>
        config.redisUrl
          ? { ok: await events.ping(), detail: redact(config.redisUrl) }
          : { ok: true, detail: 'not configured: in-process pub/sub' },
      docker: async () => {
        const info = await engine.info();
        return { ok: true, detail: `${info.name} ${info.version} (API ${info.apiVersion})` };
      },
    },
  });
  const address = await http.listen(config.port, config.host).catch(async (error: unknown) => {
    await Promise.allSettled([orm.close(), events.close(), loginLimiter.close()]);
    throw error;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  // While PostgreSQL is away, requests answer 503 and log one line (databaseOutage); this probe logs the
  // one line that says it is back, also when no request comes to notice it.
  const databaseProbe = config.databaseUrl
    ? setInterval(() => {
        void orm.checkConnection().then((result) => (result.ok ? databaseOutage.succeeded() : databaseOutage.failed(new Error(result.reason))));
      }, 2000).unref()
    : null;

  let closing: Promise<void> | null = null;
  const close = async () => {
    if (databaseProbe) clearInterval(databaseProbe);
    await http.close(config.shutdownGraceMs);
    // No more claims; then builds and jobs still running end ERRORED (their engine requests cannot
    // outlive the process), and the workers wait for them to be recorded.
    const stopped = Promise.all(workers.map((worker) => worker.stop()));
    buildRunner.abortAll();
    jobExecutor.stopAll();
    await stopped;
    await Promise.all([buildRunner.stop(), jobExecutor.stop()]);
    auth.close();
    await Promise.allSettled([orm.close(), events.close(), loginLimiter.close()]);
  };
  return {
    url: `http://${host}:${address.port}`,
    services,
    /** Idempotent: a second call waits for the first. */
    close: () => (closing ??= close()),
  };
}

async function run(): Promise<void> {
  let config: Config;
  try {
    config = parseConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(`configuration error: ${error.message}`);
    throw error;
  }
  let dockyard: Dockyard;
  try {
    dockyard = await startDockyard(config);
  } catch (error) {
    fail(`cannot start: ${(error as Error).message}`);
  }
  const graphql = `${dockyard.url}${GRAPHQL_PATH}`;
  console.log(`dockyard: listening on ${dockyard.url} (public URL ${config.publicUrl.origin})`);
  console.log(config.graphiql ? `dockyard: GraphiQL at ${graphql}` : `dockyard: GraphQL at ${graphql}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`dockyard: ${signal} received, draining`);
    dockyard.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('dockyard: shutdown failed', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function fail(message: string): never {
  console.error(`dockyard: ${message}`);
  process.exit(1);
}

if (import.meta.main) await run();
