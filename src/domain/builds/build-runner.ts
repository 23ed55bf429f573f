// Runs one queued build (the scheduler calls `run` for each claimed build task): fetch and check the
// context, build on the engine while storing every line of output, tag, push, and record the result.
// Cancel and timeout abort the engine request; whatever happens, the build ends in a final state.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Orm } from '../../db/orm.ts';
import type { EventBus } from '../../events/pubsub.ts';
import type { BuildSettings } from '../../config.ts';
import type { SecretBox } from '../../auth/secret-box.ts';
import type { ContainerEngine, RegistryAuth } from '../../runner/engine.ts';
import { ImageBuildFailed, ImagePushFailed } from '../../runner/engine.ts';
import { EngineUnavailable, type EngineAvailability } from '../../runner/engine-availability.ts';
import { DomainError } from '../errors.ts';
import { Image } from '../images/image.entity.ts';
import { RegistryCredential } from '../images/registry-credential.entity.ts';
import { LineSplitter } from '../logs/line-splitter.ts';
import { CappedLog, LogWriter, type LogsService } from '../logs/logs.service.ts';
import type { Task } from '../../scheduler/queue.ts';
import { Build, type BuildPhase, type BuildState } from './build.entity.ts';
import type { BuildsService } from './builds.service.ts';
import { downloadTarball, extractTarball, fetchGit, fetchMercurial, packContext, redactUrl, resolveContext, type ContextLimits } from './context/index.ts';
import { randomBytes } from 'node:crypto';
import { PushNames } from './push-names.ts';
import { BUILD_LABEL, serviceLabels } from './build-labels.ts';
import { whileDatabaseUnavailable } from '../../db/availability.ts';
import { DOCKER_HUB, parseReference } from './dockerfile/reference.ts';

class BuildCanceled extends Error {}
class BuildTimedOut extends Error {}
class ServiceStopping extends Error {}

const CANCEL_POLL_MS = 2000;

export interface BuildRunnerDeps {
  orm: Orm;
  bus: EventBus;
  engine: ContainerEngine;
  logs: LogsService;
  builds: BuildsService;
  secrets: SecretBox;
  settings: BuildSettings;
  dataDir: string;
  limits: ContextLimits;
  /** Waits for an engine that does not answer before a build uses it (none: the build fails at once). */
  engineAvailability?: EngineAvailability;
}

interface Outcome {
  state: BuildState;
  error: string | null;
}

export class BuildRunner {
  readonly #deps: BuildRunnerDeps;
  /** Builds running in this process, by id: cancel requests from any instance abort them here. */
  readonly #running = new Map<number, AbortController>();
  #cancelRequests: AsyncIterator<unknown> | null = null;
  #stopping = false;
  readonly #pushes: PushNames;

  constructor(deps: BuildRunnerDeps) {
    this.#deps = deps;
    this.#pushes = new PushNames(deps.engine);
  }

  /**
   * Removes the registry-qualified names a push left on the engine when its process died mid-push (a
   * push removes its name itself otherwise): names of images Dockyard built that are not local names.
   */
  async removeLeftoverPushNames(): Promise<number> {
    let removed = 0;
    for (const image of await this.#deps.engine.listImagesWithLabel(BUILD_LABEL)) {
      for (const name of image.repoTags) {
        const reference = parseReference(name);
        if (!reference || reference.domain === DOCKER_HUB) continue;
        await this.#deps.engine.untagImage(name);
        removed += 1;
      }
    }
    return removed;
  }

  /** Listens for cancel requests, which may come from any instance. */
  start(): void {
    const requests = this.#deps.bus.subscribe('buildCancelRequested')[Symbol.asyncIterator]();
    this.#cancelRequests = requests;
    void (async () => {
      for (let step = await requests.next(); !step.done; step = await requests.next()) {
        const { buildId } = step.value as { buildId: string };
        this.#running.get(Number(buildId))?.abort(new BuildCanceled());
      }
    })().catch((error: unknown) => console.error('builds: cancel listener failed', error));
  }

  async stop(): Promise<void> {
    await this.#cancelRequests?.return?.();
  }

  /** Stops every build running here (on shutdown): they end ERRORED, saying so. */
  abortAll(): void {
    this.#stopping = true;
    for (const controller of this.#running.values()) controller.abort(new ServiceStopping());
  }

  /** The task handler. */
  run = async (task: Task): Promise<void> => {
    const { buildId } = task.payload as { buildId: number };
    // Thrown, not returned: the task is tried again after the restart instead of being dropped.
    if (this.#stopping) throw new Error('the service is stopping');
    const em = this.#deps.orm.em.fork();
    const build = await em.findOne(Build, { id: buildId }, { populate: ['image', 'owner'] });
    if (!build || this.#running.has(buildId)) return; // (a lease that lapsed while the build runs here)
    if (build.state === 'RUNNING') {
      // Claimed again after its instance crashed or vanished: the engine request died with that process.
      const error = 'The instance running this build stopped or crashed; start it again.';
      await this.#deps.logs.appendClosingLine('build', build.id, `ERRORED: ${error}`).catch((failure: unknown) => console.error(`builds: could not store the closing line of build ${build.id}`, failure));
      return this.#finish(build, { state: 'ERRORED', error });
    }
    if (build.state !== 'QUEUED') return this.#cleanUp(build);
    const claimed = await em.nativeUpdate(Build, { id: buildId, state: 'QUEUED' }, { state: 'RUNNING', startedAt: new Date() });
    if (claimed !== 1) return this.#cleanUp(build);
    this.#deps.builds.publishUpdate(build.id, 'RUNNING');

    const controller = new AbortController();
    this.#running.set(build.id, controller);
    const timer = setTimeout(() => controller.abort(new BuildTimedOut()), build.options.timeoutSeconds * 1000);
    // Cancel requests travel as events, which a Redis outage can drop: the database flag is checked too.
    const cancelCheck = setInterval(() => void this.#checkCancel(build.id, controller), CANCEL_POLL_MS);
    let outcome: Outcome;
    const log = new CappedLog(new LogWriter(this.#deps.logs, 'build', build.id, await this.#deps.logs.nextSeq('build', build.id).catch(() => 1)), this.#deps.settings.logMaxBytes);
    try {
      await this.#checkCancel(build.id, controller);
      controller.signal.throwIfAborted();
      await this.#execute(build, controller.signal, log);
      outcome = { state: 'SUCCEEDED', error: null };
    } catch (error) {
      outcome = outcomeOf(controller.signal.aborted ? controller.signal.reason : error);
      log.system(`${outcome.state}: ${outcome.error}`);
    } finally {
      clearTimeout(timer);
      clearInterval(cancelCheck);
      this.#running.delete(build.id);
    }
    // Every line is stored before the final state, however long the database is away (only a stopping service gives up).
    const giveUp = () => this.#stopping;
    await log.close(giveUp).catch((error: unknown) => console.error(`builds: could not store the last output of build ${build.id}`, error));
    await whileDatabaseUnavailable(() => this.#finish(build, outcome), giveUp);
  };

  async #execute(build: Build, signal: AbortSignal, log: CappedLog): Promise<void> {
    const { engine, settings } = this.#deps;
    const workDir = path.join(this.#deps.dataDir, build.workDir);
    const { contextDir, dockerfile, commit } = await this.#prepareContext(build, workDir, signal, log);
    signal.throwIfAborted();
    // An engine that does not answer (restarting) is waited for, up to ENGINE_WAIT_SECONDS, before it is used.
    await this.#deps.engineAvailability?.wait(signal, (line) => log.system(line));
    // What the engine builds: the service's rewrite of the Dockerfile, every image in it resolved to an id.
    const resolved = await this.#deps.builds.resolveForBuild(build, dockerfile);
    for (const base of resolved.bases) log.system(`line ${base.line}: ${base.reference} is ${base.id}`);
    const generated = { name: `.dockyard-Dockerfile-${randomBytes(8).toString('hex')}`, content: resolved.text };

    const versionTag = commit ? commit.slice(0, 12) : timestampTag(new Date());
    const tags = [...new Set([...(build.options.tags.length > 0 ? build.options.tags : ['latest']), versionTag])];
    const repository = build.image.repository;
    await this.#update(build, { phase: 'BUILDING', versionTag, commit });

    const splitter = new LineSplitter();
    const onLine = (line: string) => {
      log.write('stdout', line);
      const step = /^Step (\d+)\/(\d+) :/.exec(line);
      if (step) void this.#update(build, { stepCurrent: Number(step[1]), stepTotal: Number(step[2]) }).catch(() => {}); // progress is best effort
    };
    // The images these tags name now (a rebuild of the same commit, `latest`): one that this build
    // leaves with no tag at all is removed after it succeeds, instead of staying in the engine unnamed.
    const replaced = (await Promise.all(tags.map((tag) => engine.inspectImage(`${repository}:${tag}`)))).flatMap((found) => (found ? [found.id] : []));
    let result: { imageId: string };
    try {
      result = await engine.buildImage(
        {
          context: packContext(contextDir, this.#deps.limits, generated),
          dockerfile: generated.name,
          tags: tags.map((tag) => `${repository}:${tag}`),
          buildArgs: build.options.buildArgs,
          labels: build.options.labels,
          serviceLabels: serviceLabels(build),
          target: resolved.target,
          noCache: build.options.noCache,
          memoryBytes: settings.memoryBytes,
          cpus: settings.cpus,
          network: settings.network,
          signal,
        },
        (chunk) => splitter.push(chunk).forEach(onLine),
      );
    } finally {
      splitter.end().forEach(onLine);
    }
    const built = await engine.inspectImage(result.imageId);
    await this.#update(build, { dockerImageId: result.imageId });
    const em = this.#deps.orm.em.fork();
    const image = await em.findOneOrFail(Image, { id: build.image.id });
    image.dockerImageId = result.imageId;
    image.sizeBytes = built?.sizeBytes ?? null;
    image.tags = tags;
    if (build.dockerfile !== null) image.dockerfile = build.dockerfile;

    if (build.push) {
      await this.#update(build, { phase: 'PUSHING' });
      const target = `${build.push.registry}/${build.push.repository ?? repository}`;
      const auth = await this.#registryAuth(build);
      let digest: string | null = null;
      for (const tag of tags) {
        log.system(`pushing ${target}:${tag}`);
        const pushOutput = new LineSplitter();
        ({ digest } = await this.#pushes.push({ imageId: result.imageId, repository: target, tag, auth, signal }, (chunk) =>
          pushOutput.push(chunk).forEach((line) => log.write('stdout', line)),
        ));
        pushOutput.end().forEach((line) => log.write('stdout', line));
      }
      image.pushedTo = target;
      image.digest = digest;
    }
    await em.flush();
    for (const imageId of new Set(replaced)) {
      if (imageId === result.imageId) continue;
      await engine.removeUntaggedImage(imageId).catch((error: unknown) => console.error(`builds: could not remove the image build ${build.id} replaced`, error));
    }
  }

  /** Makes the directory the engine builds from, and reads the user's Dockerfile in it. */
  async #prepareContext(build: Build, workDir: string, signal: AbortSignal, log: CappedLog): Promise<{ contextDir: string; dockerfile: string; commit: string | null }> {
    const source = build.source;
    if (source.kind === 'DOCKERFILE' || source.kind === 'TARBALL') {
      // Checked when the build was requested; resolved again, as every source is, right before it is built.
      const contextDir = path.join(workDir, 'context');
      return { contextDir, dockerfile: await readFile(path.join(contextDir, 'Dockerfile'), 'utf8'), commit: null };
    }
    await this.#update(build, { phase: 'FETCHING' });
    const { settings } = this.#deps;
    const policy = this.#deps.builds.policy;
    const timeoutMs = settings.sourceTimeoutSeconds * 1000;
    const fetched = path.join(workDir, 'source');
    await mkdir(fetched, { recursive: true });
    if (source.kind === 'TARBALL_URL') {
      log.system(`downloading ${redactUrl(source.url)}`);
      const archive = path.join(workDir, 'download.tar');
      await downloadTarball(source.url, archive, { maxBytes: settings.uploadMaxBytes, policy, timeoutMs, signal });
      await extractTarball(createReadStream(archive), fetched, this.#deps.limits);
      const resolved = await resolveContext(fetched, '.', 'Dockerfile');
      return { contextDir: resolved.contextDir, dockerfile: await readFile(path.join(resolved.contextDir, resolved.dockerfile), 'utf8'), commit: null };
    }
    log.system(`fetching ${redactUrl(source.url)} at ${source.ref}`);
    const { commit } =
      source.kind === 'GIT'
        ? await fetchGit({ url: source.url, ref: source.ref, dir: fetched, policy, timeoutMs, signal })
        : await fetchMercurial({ url: source.url, revision: source.ref, dir: fetched, policy, timeoutMs, signal });
    log.system(`at commit ${commit}`);
    const resolved = await resolveContext(fetched, source.contextPath, source.dockerfilePath);
    return { contextDir: resolved.contextDir, dockerfile: await readFile(path.join(resolved.contextDir, resolved.dockerfile), 'utf8'), commit };
  }

  async #registryAuth(build: Build): Promise<RegistryAuth | null> {
    const push = build.push!;
    if (push.username && build.pushSecret) {
      return { username: push.username, password: this.#deps.secrets.open(build.pushSecret), serveraddress: push.registry };
    }
    const stored = await this.#deps.orm.em.fork().findOne(RegistryCredential, { owner: build.owner.id, registry: push.registry });
    return stored ? { username: stored.username, password: this.#deps.secrets.open(stored.passwordSealed), serveraddress: push.registry } : null;
  }

  async #update(build: Build, fields: Partial<Pick<Build, 'phase' | 'stepCurrent' | 'stepTotal' | 'dockerImageId' | 'versionTag' | 'commit'>> & { phase?: BuildPhase }): Promise<void> {
    await this.#deps.orm.em.fork().nativeUpdate(Build, { id: build.id }, fields);
    this.#deps.builds.publishUpdate(build.id, 'RUNNING');
  }

  async #checkCancel(buildId: number, controller: AbortController): Promise<void> {
    const current = await this.#deps.orm.em.fork().findOne(Build, { id: buildId }, { fields: ['cancelRequestedAt'] }).catch(() => null);
    if (current?.cancelRequestedAt && !controller.signal.aborted) controller.abort(new BuildCanceled());
  }

  /** Only a RUNNING build is finished: one another instance has ended already keeps its state. */
  async #finish(build: Build, outcome: Outcome): Promise<void> {
    const changed = await this.#deps.orm.em
      .fork()
      .nativeUpdate(Build, { id: build.id, state: 'RUNNING' }, { state: outcome.state, error: outcome.error, finishedAt: new Date(), pushSecret: null });
    if (changed === 0) return this.#cleanUp(build);
    this.#deps.builds.publishUpdate(build.id, outcome.state);
    await this.#cleanUp(build);
  }

  async #cleanUp(build: Build): Promise<void> {
    await rm(path.join(this.#deps.dataDir, build.workDir), { recursive: true, force: true });
  }
}

/** How an error ends a build: the user's mistakes FAIL it, the service's or engine's ERROR it. */
function outcomeOf(error: unknown): Outcome {
  if (error instanceof BuildCanceled) return { state: 'CANCELED', error: 'Canceled.' };
  if (error instanceof BuildTimedOut) return { state: 'TIMED_OUT', error: 'The build ran out of time.' };
  if (error instanceof ServiceStopping) return { state: 'ERRORED', error: 'The service stopped while this build was running; start it again.' };
  if (error instanceof EngineUnavailable) return { state: 'ERRORED', error: error.message };
  if (error instanceof ImageBuildFailed || error instanceof ImagePushFailed || error instanceof DomainError) {
    return { state: 'FAILED', error: error.message };
  }
  console.error('builds: a build failed unexpectedly', error);
  return { state: 'ERRORED', error: `The service or the engine failed: ${(error as Error)?.message ?? String(error)}` };
}

function timestampTag(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}
