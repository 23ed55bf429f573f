// Builds: checking a build request and queueing it, reading builds and their logs, cancelling.
// Running a build is the BuildRunner's job; both share the rules about states written here.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import type { EventBus } from '../../events/pubsub.ts';
import { followChanges } from '../../events/follow.ts';
import type { BuildSettings } from '../../config.ts';
import type { TaskQueue } from '../../scheduler/queue.ts';
import type { ContainerEngine, EngineImage } from '../../runner/engine.ts';
import type { SecretBox } from '../../auth/secret-box.ts';
import type { User } from '../users/user.entity.ts';
import { DomainError } from '../errors.ts';
import { saveUpload, type IncomingFile } from '../uploads.ts';
import { Image } from '../images/image.entity.ts';
import { BaseImages } from './base-images.ts';
import { ImageRefused, resolveDockerfile, type ImageResolver, type ResolvedDockerfile } from './dockerfile/resolve.ts';
import { DOCKER_HUB, parseReference } from './dockerfile/reference.ts';
import type { LogsService } from '../logs/logs.service.ts';
import type { LogLine } from '../logs/log-line.entity.ts';
import { Build, FINISHED_BUILD_STATES, type BuildOptions, type BuildPush, type BuildSource, type BuildState } from './build.entity.ts';
import {
  checkBuildArgs,
  checkImageName,
  checkLabels,
  checkPushRepository,
  checkPushRegistry,
  checkTags,
  checkTarget,
  checkTimeout,
  type KeyValue,
} from './build-input.ts';
import {
  assertUrlAllowed,
  checkRef,
  checkRelativePath,
  checkRepositoryUrl,
  contextFromDockerfile,
  extractTarball,
  resolveContext,
  type AddressPolicy,
  type ContextLimits,
} from './context/index.ts';

export const BUILD_TASK = 'build';


export type BuildSourceInput =
  | { kind: 'DOCKERFILE'; dockerfile: string; files: IncomingFile[] }
  | { kind: 'TARBALL'; file: IncomingFile }
  | { kind: 'TARBALL_URL'; url: string }
  | { kind: 'GIT' | 'MERCURIAL'; url: string; ref?: string | null; contextPath?: string | null; dockerfilePath?: string | null };

export interface PushInput {
  registry: string;
  /** Repository path in the registry (`user/image`); default: the image's own repository. */
  repository?: string | null;
  insecure?: boolean | null;
  /** With a password: credentials for this build only. Neither: the user's stored credentials for the registry, if any. */
  username?: string | null;
  password?: string | null;
}

export interface StartBuildInput {
  imageName: string;
  source: BuildSourceInput;
  noCache?: boolean | null;
  buildArgs?: KeyValue[] | null;
  target?: string | null;
  labels?: KeyValue[] | null;
  tags?: string[] | null;
  timeoutSeconds?: number | null;
  push?: PushInput | null;
}

export interface BuildsDeps {
  engine: ContainerEngine;
  /** This instance's worker id: builds from uploads (files on this instance's disk) run here. */
  instanceId: string;
  orm: Orm;
  bus: EventBus;
  queue: TaskQueue;
  logs: LogsService;
  secrets: SecretBox;
  settings: BuildSettings;
  dataDir: string;
  limits: ContextLimits;
}

const MAX_ATTACHMENTS = 100;

/** Stands for an image's id when a Dockerfile is checked at submission (ids are resolved when it is built). */
const UNRESOLVED_ID = `sha256:${'0'.repeat(64)}`;

export class BuildsService {
  readonly #deps: BuildsDeps;
  /** The operator's base images (BUILD_BASE_IMAGES), resolved to engine ids. */
  readonly bases: BaseImages;

  constructor(deps: BuildsDeps) {
    this.#deps = deps;
    this.bases = new BaseImages(deps.engine, deps.settings.baseImages);
  }

  get policy(): AddressPolicy {
    return { allowPrivate: this.#deps.settings.allowPrivateAddresses, allowedHosts: this.#deps.settings.allowedHosts };
  }

  /** Checks the request, stores what was uploaded, and queues the build. Bad input fails here, before any engine call. */
  async start(user: User, input: StartBuildInput): Promise<Build> {
    const { settings } = this.#deps;
    const imageName = checkImageName(input.imageName);
    const options: BuildOptions = {
      noCache: input.noCache ?? false,
      buildArgs: checkBuildArgs(input.buildArgs ?? []),
      target: checkTarget(input.target),
      labels: checkLabels(input.labels ?? []),
      tags: checkTags(input.tags ?? []),
      timeoutSeconds: checkTimeout(input.timeoutSeconds, settings.timeoutSeconds),
    };
    const push = input.push ? await this.#checkPush(user, input.push) : null;
    const source = await this.#checkSource(user, input.source, options);
    if ((source.kind === 'DOCKERFILE' || source.kind === 'TARBALL') && this.#deps.settings.concurrency === 0) {
      // Uploaded files stay on the disk of the instance that received them, and this one runs no builds.
      throw new DomainError('INVALID_SOURCE', 'This instance runs no builds (BUILD_CONCURRENCY=0), so it cannot take uploaded files; use a URL or a repository, or an instance that builds.', 'source');
    }

    const workDir = path.join('builds', `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const absoluteWorkDir = path.join(this.#deps.dataDir, workDir);
    await mkdir(absoluteWorkDir, { recursive: true });
    try {
      const received = await this.#receiveUploads(user, input.source, absoluteWorkDir, options);
      if (source.kind === 'DOCKERFILE') source.files = received;
      if (source.kind === 'TARBALL') source.filename = received[0] ?? '';
      const dockerfile = input.source.kind === 'DOCKERFILE' ? input.source.dockerfile : null;
      return await this.#queue(user, imageName, { source, options, push: push?.push ?? null, pushSecret: push?.secret ?? null, workDir, dockerfile });
    } catch (error) {
      await rm(absoluteWorkDir, { recursive: true, force: true });
      throw error;
    }
  }

  async get(user: User, id: number): Promise<Build> {
    const build = Number.isSafeInteger(id) ? await this.#orm.em.fork().findOne(Build, { id, owner: user.id }, { populate: ['image'] }) : null;
    if (!build) throw new DomainError('NOT_FOUND', 'No such build.');
    return build;
  }

  async listForImage(user: User, imageId: number, limit: number): Promise<Build[]> {
    return this.#orm.em.fork().find(Build, { image: imageId, owner: user.id }, { orderBy: { id: 'desc' }, limit, populate: ['image'] });
  }

  /** Cancels a queued build at once; asks the instance running a running build to stop it. A finished build is left as it is. */
  async cancel(user: User, id: number): Promise<Build> {
    const build = await this.get(user, id);
    if (build.state === 'QUEUED') {
      const em = this.#orm.em.fork();
      const changed = await em.nativeUpdate(Build, { id, state: 'QUEUED' }, { state: 'CANCELED', finishedAt: new Date(), cancelRequestedAt: new Date(), pushSecret: null });
      if (changed === 1) {
        // Its files are not needed any more (its task, when it comes, finds nothing to do).
        await rm(path.join(this.#deps.dataDir, build.workDir), { recursive: true, force: true });
        this.publishUpdate(id, 'CANCELED');
        return this.get(user, id);
      }
    }
    const current = await this.get(user, id);
    if (current.state === 'RUNNING') {
      await this.#orm.em.fork().nativeUpdate(Build, { id }, { cancelRequestedAt: new Date() });
      this.#deps.bus.publish('buildCancelRequested', { buildId: String(id) });
      return this.get(user, id);
    }
    return current;
  }

  async readLogs(user: User, id: number, afterSeq: number, limit: number): Promise<LogLine[]> {
    await this.get(user, id);
    return this.#deps.logs.read('build', id, afterSeq, Math.min(Math.max(limit, 1), 5000));
  }

  /**
   * Stored lines after `afterSeq`, then live lines, until the build has finished and every line was given.
   * Ownership is checked before the stream is returned, so a refusal is an ordinary GraphQL error.
   */
  async followLogs(user: User, id: number, afterSeq: number): Promise<AsyncGenerator<LogLine[]>> {
    await this.get(user, id);
    return this.#deps.logs.follow('build', id, afterSeq, () => this.isFinished(id));
  }

  /** The build now, then again after every change, ending with its final state. */
  async followUpdates(user: User, id: number): Promise<AsyncGenerator<Build>> {
    await this.get(user, id);
    // Each event carries the state it announces: a build that moves on twice before it is read still
    // shows both states, in order.
    return followChanges(
      this.#deps.bus,
      'buildUpdated',
      String(id),
      async (event) => {
        const build = await this.get(user, id);
        if (event && event.state !== build.state) build.state = event.state as BuildState;
        return build;
      },
      (build) => FINISHED_BUILD_STATES.includes(build.state),
    );
  }

  async isFinished(id: number): Promise<boolean> {
    const build = await this.#orm.em.fork().findOne(Build, { id }, { fields: ['state'] });
    return !build || FINISHED_BUILD_STATES.includes(build.state);
  }

  publishUpdate(id: number, state: BuildState): void {
    this.#deps.bus.publish('buildUpdated', String(id), { buildId: String(id), state });
  }

  get #orm(): Orm {
    return this.#deps.orm;
  }

  async #checkSource(user: User, input: BuildSourceInput, options: BuildOptions): Promise<BuildSource> {
    switch (input.kind) {
      case 'DOCKERFILE':
        await this.#checkDockerfile(user, input.dockerfile, options);
        if (input.files.length > MAX_ATTACHMENTS) throw new DomainError('INVALID_INPUT', `At most ${MAX_ATTACHMENTS} files.`, 'files');
        return { kind: 'DOCKERFILE', files: [] }; // names are known once the files arrive
      case 'TARBALL':
        return { kind: 'TARBALL', filename: '' };
      case 'TARBALL_URL':
        await assertUrlAllowed(input.url, this.policy);
        return { kind: 'TARBALL_URL', url: input.url };
      case 'GIT':
      case 'MERCURIAL': {
        const url = checkRepositoryUrl(input.url, input.kind === 'GIT' ? 'git' : 'mercurial');
        await assertUrlAllowed(url.href, this.policy);
        return {
          kind: input.kind,
          url: input.url,
          ref: checkRef(input.ref ?? (input.kind === 'GIT' ? 'HEAD' : 'default')),
          contextPath: checkRelativePath(input.contextPath ?? '.', 'contextPath'),
          dockerfilePath: checkRelativePath(input.dockerfilePath ?? 'Dockerfile', 'dockerfilePath'),
        };
      }
    }
  }

  async #checkPush(user: User, input: PushInput): Promise<{ push: BuildPush; secret: string | null }> {
    const registry = checkPushRegistry(input.registry);
    const repository = checkPushRepository(input.repository);
    // The pushed name is `<registry>/<repository>`, always registry-qualified (checkPushRegistry): it can
    // never be read by the engine as one of the local names, this user's or anyone's.
    const target = parseReference(`${registry}/${repository ?? `${this.namespaces(user).ownNamespace}/image`}`);
    if (target?.domain !== registry) throw new DomainError('INVALID_INPUT', 'The push target is not a registry-qualified name.', 'push');
    // Nor one of the operator's base images (a registry-qualified base name would exist on the engine while the push ran).
    if (this.bases.names().some((name) => parseReference(name)?.domain === registry && parseReference(name)?.path === target.path)) {
      throw new DomainError('INVALID_INPUT', 'The push target is the name of a base image.', 'push');
    }
    await assertUrlAllowed(`https://${registry}/`, this.policy);
    if (input.insecure && !(await this.#deps.engine.allowsPlainHttp(registry))) {
      throw new DomainError('INVALID_INPUT', `The engine does not allow plain HTTP to ${registry}; the operator must list it in the daemon's insecure-registries.`, 'push');
    }
    const username = input.username?.trim() || null;
    const password = input.password ?? null;
    if ((username === null) !== (password === null || password === '')) {
      throw new DomainError('INVALID_INPUT', 'Give both a username and a password, or neither (to use stored credentials).', 'push');
    }
    return {
      push: { registry, repository, insecure: input.insecure ?? false, username },
      secret: password ? this.#deps.secrets.seal(password) : null,
    };
  }

  /** The namespace every generated repository lives in, and this user's part of it. */
  namespaces(user: Pick<User, 'login'>): { serviceNamespace: string; ownNamespace: string } {
    return { serviceNamespace: this.#deps.settings.namespace, ownNamespace: `${this.#deps.settings.namespace}/${user.login}` };
  }

  /** The Dockerfile the engine builds for this one: every image it names resolved to an id the user may use. */
  async resolveForBuild(build: Build, dockerfile: string): Promise<ResolvedDockerfile> {
    return resolveDockerfile(dockerfile, { images: this.#images(build.owner, true), buildArgs: build.options.buildArgs, target: build.options.target });
  }

  /** Checked when the build is requested, by the same rules, without asking the engine for ids. */
  async #checkDockerfile(user: User, dockerfile: string, options: BuildOptions): Promise<void> {
    await resolveDockerfile(dockerfile, { images: this.#images(user, false), buildArgs: options.buildArgs, target: options.target });
  }

  /**
   * What a user may build on: the operator's base images, and the user's own images by their repository
   * (`<namespace>/<login>/<name>[:tag]`), looked up through the repository the service made, never
   * through the user's text. Anything else, another user's image included, is simply not found.
   */
  #images(user: Pick<User, 'id' | 'login'>, resolveIds: boolean): ImageResolver {
    const own = `${this.namespaces(user).ownNamespace}/`;
    return {
      allowed: () => `one of your images (${own}<name>[:tag]) or a base image (${this.bases.names().join(', ') || 'none configured'})`,
      resolve: async (reference) => {
        const usable = (image: EngineImage | null): string | null => {
          // Triggers would run in this build, read by the engine alone: such images are not built on.
          if (image && image.onBuild.length > 0) throw new ImageRefused('the image has ONBUILD triggers, which Dockyard does not run; build on an image without them.');
          return image?.id ?? null;
        };
        if (this.bases.allows(reference)) return resolveIds ? usable(await this.bases.imageOf(reference)) : UNRESOLVED_ID;
        if (reference.domain !== DOCKER_HUB || !reference.path.startsWith(own)) return null;
        const name = reference.path.slice(own.length);
        const image = await this.#orm.em.fork().findOne(Image, { owner: user.id, name });
        if (!image || image.repository !== reference.path) return null;
        if (!resolveIds) return UNRESOLVED_ID;
        return usable(await this.#deps.engine.inspectImage(`${image.repository}:${reference.tag}`));
      },
    };
  }

  /**
   * Streams uploaded files to disk, one after another as they arrive, and makes the build context
   * from them (checked like every other source, Dockerfile included). Returns the files' names.
   */
  async #receiveUploads(user: User, source: BuildSourceInput, workDir: string, options: BuildOptions): Promise<string[]> {
    const cap = this.#deps.settings.uploadMaxBytes;
    const context = path.join(workDir, 'context');
    if (source.kind === 'DOCKERFILE') {
      const uploads = path.join(workDir, 'uploads');
      await mkdir(uploads);
      const files: { name: string; path: string }[] = [];
      for (const [i, incoming] of source.files.entries()) {
        const file = await incoming.receive();
        const target = path.join(uploads, String(i));
        await saveUpload(file, target, cap, 'files');
        files.push({ name: file.name, path: target });
      }
      await mkdir(context);
      await contextFromDockerfile(context, source.dockerfile, files);
      await rm(uploads, { recursive: true, force: true });
      return files.map((f) => f.name);
    }
    if (source.kind === 'TARBALL') {
      const file = await source.file.receive();
      const archive = path.join(workDir, 'context.tar');
      await saveUpload(file, archive, cap, 'contextTarball');
      await mkdir(context);
      await extractTarball(createReadStream(archive), context, this.#deps.limits);
      await rm(archive, { force: true });
      const resolved = await resolveContext(context, '.', 'Dockerfile');
      await this.#checkDockerfile(user, await readFile(path.join(resolved.contextDir, resolved.dockerfile), 'utf8'), options);
      return [file.name];
    }
    return [];
  }

  async #queue(
    user: User,
    imageName: string,
    fields: Pick<Build, 'source' | 'options' | 'push' | 'pushSecret' | 'workDir' | 'dockerfile'>,
  ): Promise<Build> {
    const image = await this.#findOrCreateImage(user, imageName);
    const em = this.#orm.em.fork();
    const build = await em.transactional(async (tx) => {
      const created = tx.create(Build, { ...fields, image: image.id, owner: user.id, state: 'QUEUED' });
      await tx.flush();
      const local = fields.source.kind === 'DOCKERFILE' || fields.source.kind === 'TARBALL';
      // A handler that failed (the database was away) is tried again; it is idempotent.
      await this.#deps.queue.add(BUILD_TASK, { buildId: created.id }, { em: tx, affinity: local ? this.#deps.instanceId : null, maxAttempts: 3 });
      return created;
    });
    // Read before the wake-up: a worker of this process starts at once, and the answer is the build as
    // it was accepted (QUEUED), not whatever state it reached a moment later.
    const queued = await this.get(user, build.id);
    this.#deps.queue.wake(BUILD_TASK);
    this.publishUpdate(build.id, 'QUEUED');
    return queued;
  }

  async #findOrCreateImage(user: User, name: string): Promise<Image> {
    const em = this.#orm.em.fork();
    const existing = await em.findOne(Image, { owner: user.id, name });
    if (existing) return existing;
    const image = em.create(Image, { owner: user.id, name, repository: `${this.namespaces(user).ownNamespace}/${name}`, tags: [] });
    try {
      await em.flush();
      return image;
    } catch (error) {
      // Two builds of a new image at once: the other request made it.
      if (error instanceof UniqueConstraintViolationException) return this.#orm.em.fork().findOneOrFail(Image, { owner: user.id, name });
      throw error;
    }
  }
}
