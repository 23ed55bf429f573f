// GraphQL for builds: starting one from any source, reading it and its log, following both live, cancelling.
import { builder } from '../builder.ts';
import { parseId } from '../ids.ts';
import { KeyValueInput, KeyValueRef, keyValues } from '../key-value.ts';
import { DomainError } from '../../domain/errors.ts';
import { ImageRef } from './images.ts';
import { eachLine, LogChunkRef, LogLineRef } from './logs.ts';
import { BUILD_PHASES, BUILD_STATES, type Build, type BuildSource } from '../../domain/builds/build.entity.ts';
import type { BuildSourceInput, StartBuildInput } from '../../domain/builds/builds.service.ts';
import { incomingFile } from '../uploads.ts';

const BuildStateEnum = builder.enumType('BuildState', { values: BUILD_STATES });
const BuildPhaseEnum = builder.enumType('BuildPhase', { values: BUILD_PHASES });
const BuildSourceKindEnum = builder.enumType('BuildSourceKind', {
  values: ['DOCKERFILE', 'TARBALL', 'TARBALL_URL', 'GIT', 'MERCURIAL'] as const,
});


const BuildSourceRef = builder.objectRef<BuildSource>('BuildSource').implement({
  description: 'Where the build context came from.',
  fields: (t) => ({
    kind: t.expose('kind', { type: BuildSourceKindEnum }),
    url: t.string({ nullable: true, resolve: (s) => ('url' in s ? s.url : null) }),
    ref: t.string({ nullable: true, resolve: (s) => ('ref' in s ? s.ref : null) }),
    contextPath: t.string({ nullable: true, resolve: (s) => ('contextPath' in s ? s.contextPath : null) }),
    dockerfilePath: t.string({ nullable: true, resolve: (s) => ('dockerfilePath' in s ? s.dockerfilePath : null) }),
    files: t.stringList({ nullable: true, resolve: (s) => (s.kind === 'DOCKERFILE' ? s.files : s.kind === 'TARBALL' ? [s.filename] : null) }),
  }),
});

const BuildPushRef = builder.objectRef<NonNullable<Build['push']>>('BuildPush').implement({
  fields: (t) => ({
    registry: t.exposeString('registry'),
    repository: t.string({ nullable: true, resolve: (push) => push.repository ?? null }),
    insecure: t.exposeBoolean('insecure'),
    username: t.exposeString('username', { nullable: true }),
  }),
});

const BuildProgressRef = builder.objectRef<{ current: number; total: number }>('BuildProgress').implement({
  description: 'Step n of m of the Dockerfile.',
  fields: (t) => ({ current: t.exposeInt('current'), total: t.exposeInt('total') }),
});


export const BuildRef = builder.objectRef<Build>('Build').implement({
  description: 'One attempt to build an image.',
  fields: (t) => ({
    id: t.exposeID('id'),
    image: t.field({ type: ImageRef, resolve: (build) => build.image }),
    state: t.expose('state', { type: BuildStateEnum }),
    phase: t.expose('phase', { type: BuildPhaseEnum, nullable: true, description: 'What a RUNNING build is doing.' }),
    progress: t.field({
      type: BuildProgressRef,
      nullable: true,
      resolve: (b) => (b.stepCurrent != null && b.stepTotal != null ? { current: b.stepCurrent, total: b.stepTotal } : null),
    }),
    error: t.exposeString('error', { nullable: true, description: 'Why a build did not succeed.' }),
    source: t.expose('source', { type: BuildSourceRef }),
    dockerfile: t.exposeString('dockerfile', { nullable: true }),
    noCache: t.boolean({ resolve: (b) => b.options.noCache }),
    buildArgs: t.field({ type: [KeyValueRef], resolve: (b) => keyValues(b.options.buildArgs) }),
    labels: t.field({ type: [KeyValueRef], resolve: (b) => keyValues(b.options.labels) }),
    target: t.string({ nullable: true, resolve: (b) => b.options.target }),
    tags: t.stringList({ description: 'Tags asked for.', resolve: (b) => b.options.tags }),
    timeoutSeconds: t.int({ resolve: (b) => b.options.timeoutSeconds }),
    push: t.expose('push', { type: BuildPushRef, nullable: true }),
    versionTag: t.exposeString('versionTag', { nullable: true, description: 'Added to every build: the commit id for repositories, else a UTC timestamp.' }),
    commit: t.exposeString('commit', { nullable: true }),
    dockerImageId: t.exposeString('dockerImageId', { nullable: true }),
    cancelRequested: t.boolean({ resolve: (b) => b.cancelRequestedAt != null }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    logLines: t.withAuth({ user: true }).field({
      type: [LogLineRef],
      description: 'Stored output after `afterSeq`, at most `first` lines.',
      args: { afterSeq: t.arg.int({ defaultValue: 0 }), first: t.arg.int({ defaultValue: 1000 }) },
      resolve: (b, args, { viewer, services }) => services.builds.readLogs(viewer.user, b.id, args.afterSeq ?? 0, args.first ?? 1000),
    }),
  }),
});

builder.objectField(ImageRef, 'builds', (t) =>
  t.withAuth({ user: true }).field({
    type: [BuildRef],
    description: 'Newest first.',
    args: { first: t.arg.int({ defaultValue: 20 }) },
    resolve: (image, args, { viewer, services }) => services.builds.listForImage(viewer.user, image.id, Math.min(Math.max(args.first ?? 20, 1), 100)),
  }),
);

const RepositorySourceInput = builder.inputType('RepositorySourceInput', {
  fields: (t) => ({
    url: t.string({ required: true, description: 'http(s) only.' }),
    ref: t.string({ description: 'Branch, tag or commit (git; default HEAD), or revision (Mercurial; default `default`).' }),
    contextPath: t.string({ description: 'Directory of the build context, relative to the repository root (default `.`).' }),
    dockerfilePath: t.string({ description: 'Dockerfile, relative to the context (default `Dockerfile`).' }),
  }),
});

const PushInput = builder.inputType('PushInput', {
  fields: (t) => ({
    registry: t.string({ required: true, description: '`host[:port]`.' }),
    repository: t.string({ description: 'Repository in the registry, like `user/image` (default: the image\'s own repository path).' }),
    insecure: t.boolean({ description: 'The registry speaks plain HTTP (the engine must allow it).' }),
    username: t.string({ description: 'With password: used for this build only. Without both: your stored login for the registry.' }),
    password: t.string(),
  }),
});

const BuildImageInput = builder.inputType('BuildImageInput', {
  description: 'Exactly one source: `dockerfile` (with `files`), `contextTarball`, `tarballUrl`, `git` or `mercurial`.',
  fields: (t) => ({
    imageName: t.string({ required: true, description: 'Your image to build; made on its first build.' }),
    dockerfile: t.string(),
    files: t.field({ type: ['Upload'], description: 'With `dockerfile`: files placed at the root of the build context.' }),
    contextTarball: t.field({ type: 'Upload', description: 'A build context as `.tar` or `.tar.gz`.' }),
    tarballUrl: t.string({ description: 'An http(s) URL of a `.tar` or `.tar.gz` build context.' }),
    git: t.field({ type: RepositorySourceInput }),
    mercurial: t.field({ type: RepositorySourceInput }),
    noCache: t.boolean(),
    buildArgs: t.field({ type: [KeyValueInput] }),
    target: t.string({ description: 'Build stage to stop at.' }),
    labels: t.field({ type: [KeyValueInput] }),
    tags: t.stringList({ description: 'Tags besides the version tag (default `latest`).' }),
    timeoutSeconds: t.int(),
    push: t.field({ type: PushInput }),
  }),
});

type BuildImageArgs = typeof BuildImageInput.$inferInput;

/** The one source the input names. Multipart files are handed on unread: the service streams them to disk. */
function sourceOf(input: BuildImageArgs): BuildSourceInput {
  const given = (['dockerfile', 'contextTarball', 'tarballUrl', 'git', 'mercurial'] as const).filter((key) => input[key] != null);
  if (given.length !== 1) {
    throw new DomainError('INVALID_SOURCE', 'Give exactly one of dockerfile, contextTarball, tarballUrl, git or mercurial.', 'source');
  }
  if (input.files?.length && input.dockerfile == null) throw new DomainError('INVALID_SOURCE', 'files go with dockerfile.', 'files');
  if (input.dockerfile != null) {
    return { kind: 'DOCKERFILE', dockerfile: input.dockerfile, files: (input.files ?? []).map(incomingFile) };
  }
  if (input.contextTarball) return { kind: 'TARBALL', file: incomingFile(input.contextTarball) };
  if (input.tarballUrl != null) return { kind: 'TARBALL_URL', url: input.tarballUrl };
  return input.git ? { kind: 'GIT', ...input.git } : { kind: 'MERCURIAL', ...input.mercurial! };
}


builder.queryFields((t) => ({
  build: t.withAuth({ user: true }).field({
    type: BuildRef,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.builds.get(viewer.user, parseId(args.id)),
  }),
}));

builder.mutationFields((t) => ({
  buildImage: t.withAuth({ user: true }).field({
    type: BuildRef,
    description: 'Queues a build of one of your images (made on its first build). Bad input fails here, before anything runs.',
    args: { input: t.arg({ type: BuildImageInput, required: true }) },
    resolve: async (_root, { input }, { viewer, services }) => {
      const request: StartBuildInput = { ...input, source: sourceOf(input) };
      return services.builds.start(viewer.user, request);
    },
  }),
  cancelBuild: t.withAuth({ user: true }).field({
    type: BuildRef,
    description: 'Cancels a queued build at once, or stops a running one (it ends CANCELED). A finished build is returned as it is.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, { viewer, services }) => services.builds.cancel(viewer.user, parseId(args.id)),
  }),
}));

builder.subscriptionFields((t) => ({
  buildLogLines: t.withAuth({ user: true }).field({
    type: LogLineRef,
    description: 'The build output after `afterSeq` (stored lines first, then live), each line once, in order; completes when the build has finished.',
    args: { buildId: t.arg.id({ required: true }), afterSeq: t.arg.int({ defaultValue: 0 }) },
    subscribe: async (_root, args, { viewer, services }) => eachLine(await services.builds.followLogs(viewer.user, parseId(args.buildId), args.afterSeq ?? 0)),
    resolve: (line) => line,
  }),
  buildLogChunks: t.withAuth({ user: true }).field({
    type: LogChunkRef,
    description: "Like buildLogLines, in chunks of consecutive lines: what a log viewer wants for a fast log (one message per chunk, not per line).",
    args: { buildId: t.arg.id({ required: true }), afterSeq: t.arg.int({ defaultValue: 0 }) },
    subscribe: (_root, args, { viewer, services }) => services.builds.followLogs(viewer.user, parseId(args.buildId), args.afterSeq ?? 0),
    resolve: (chunk) => chunk,
  }),
  buildUpdated: t.withAuth({ user: true }).field({
    type: BuildRef,
    description: 'The build now, then after every change of state, phase or progress; completes with its final state.',
    args: { buildId: t.arg.id({ required: true }) },
    subscribe: (_root, args, { viewer, services }) => services.builds.followUpdates(viewer.user, parseId(args.buildId)),
    resolve: (build) => build,
  }),
}));
