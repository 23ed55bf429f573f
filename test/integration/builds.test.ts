// Image builds end to end on the real Docker engine (FROM busybox), PostgreSQL, Redis and a real
// local registry: every source, the states, logs (stored and live), push, cancel, timeout, limits,
// ownership and deletion.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  BuildDocument,
  BuildLogLinesDocument,
  BuildUpdatedDocument,
  CancelBuildDocument,
  DeleteImageDocument,
  ImageDocument,
  ImagesDocument,
  RegistryCredentialsDocument,
  SaveRegistryCredentialDocument,
  BuildImageDocument,
} from '../generated/graphql.ts';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { buildLog, startBuild, tarball, waitForBuild } from '../support/builds.ts';
import { multipartRequest } from '../support/multipart.ts';
import { startRegistry } from '../support/registry.ts';
import { startFileServer } from '../support/file-server.ts';
import { connectWs, drain, subscribe } from '../support/ws-client.ts';
import { startGitServer } from '../support/git-server.ts';
import { createHgRepo, startHgServer } from '../support/hg-server.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const settings = { BUILD_CONCURRENCY: '2', SOURCE_ALLOWED_HOSTS: '127.0.0.1', BUILD_MEMORY_MB: '96', DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-builds-')) };
const server = await startTestServer(settings);
const alice = await loggedInUser(server.graphqlUrl, 'alice');
const bob = await loggedInUser(server.graphqlUrl, 'bob');
const name = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

const { files, url: fileUrl } = await startFileServer();

describe('sources', () => {
  it('builds a Dockerfile with attached files at the root of the context', async () => {
    const dockerfile = 'FROM busybox\nCOPY greeting.txt data.bin /srv/\nRUN cat /srv/greeting.txt && wc -c /srv/data.bin\nCMD ["cat", "/srv/greeting.txt"]\n';
    const queued = await startBuild(alice.client, { imageName: name('hello'), dockerfile, files: [null, null], tags: ['v1'], noCache: true }, [
      { path: 'input.files.0', name: 'greeting.txt', content: 'hello from an attachment\n' },
      { path: 'input.files.1', name: 'data.bin', content: new Uint8Array(3000) },
    ]);
    expect(queued.state).toBe('QUEUED');
    expect(queued.source).toMatchObject({ kind: 'DOCKERFILE', files: ['greeting.txt', 'data.bin'] });

    const build = await waitForBuild(alice.client, queued.id);
    expect(build).toMatchObject({ state: 'SUCCEEDED', error: null });
    expect(build.progress!.current).toBe(build.progress!.total);
    expect(build.versionTag).toMatch(/^\d{8}-\d{6}$/);
    expect(build.image.repository).toBe(`dockyard/${alice.login}/${build.image.name}`);
    expect(build.image.tags).toEqual(['v1', build.versionTag]);
    expect(build.image.dockerImageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(build.image.sizeBytes).toBeGreaterThan(100_000);

    const log = (await buildLog(alice.client, build.id)).map((line) => line.text);
    // The engine counts the service's label as a step too: one (Step 1/5 for these four instructions).
    // The engine builds the service's rewrite: FROM names the image id the service resolved, and a stage name it made.
    const busybox = (await docker.getImage('busybox:latest').inspect()).Id;
    expect(log).toContain(`line 1: busybox is ${busybox}`);
    expect(log.find((line) => line.startsWith('Step 1/'))).toBe(`Step 1/5 : FROM ${busybox.slice('sha256:'.length)} AS stage-0.`);
    expect(log).toContain('hello from an attachment');
    expect(log).toContain('3000 /srv/data.bin');

    const inspected = await docker.getImage(build.image.dockerImageId!).inspect();
    expect(inspected.RepoTags.sort()).toEqual([`${build.image.repository}:${build.versionTag}`, `${build.image.repository}:v1`].sort());
    // One service label (each label is a build step of its own): the build, its image and owner as JSON.
    expect(Object.keys(inspected.Config.Labels).filter((key) => key.startsWith('io.dockyard.'))).toEqual(['io.dockyard.build']);
    expect(JSON.parse(inspected.Config.Labels['io.dockyard.build']!)).toEqual({ build: Number(build.id), image: Number(build.image.id), owner: Number(alice.userId) });
  });

  it('builds an uploaded .tar.gz context', async () => {
    const archive = await tarball({ Dockerfile: 'FROM busybox\nCOPY app/run.sh /run.sh\nRUN sh /run.sh\n', 'app/run.sh': 'echo ran from the tarball\n' }, true);
    const queued = await startBuild(alice.client, { imageName: name('tarball'), contextTarball: null, noCache: true }, [{ path: 'input.contextTarball', name: 'context.tar.gz', content: archive }]);
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('SUCCEEDED');
    expect((await buildLog(alice.client, build.id)).map((l) => l.text)).toContain('ran from the tarball');
  });

  it('builds a tarball fetched from a URL', async () => {
    files.set('/context.tar.gz', await tarball({ Dockerfile: 'FROM busybox\nRUN echo fetched over http\n' }, true));
    const queued = await startBuild(alice.client, { imageName: name('url'), tarballUrl: fileUrl('/context.tar.gz'), noCache: true });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('SUCCEEDED');
    const log = (await buildLog(alice.client, build.id)).map((l) => l.text);
    expect(log).toContain('fetched over http');
    expect(log[0]).toBe(`downloading ${fileUrl('/context.tar.gz')}`);
  });

  it('builds a git repository at a branch, a tag and a commit, from a sub-path with its own Dockerfile path', async () => {
    const git = await startGitServer();
    onTestFinished(() => git.close());
    const repo = await git.createRepo('app.git', {
      commits: [
        { files: { 'service/docker/Build.dockerfile': 'FROM busybox\nCOPY version.txt /\nRUN cat /version.txt\n', 'service/version.txt': 'version one\n', 'README': 'not in the context' } },
        { files: { 'service/version.txt': 'version two\n' } },
      ],
      branch: { name: 'feature', commits: [{ files: { 'service/version.txt': 'feature version\n' } }] },
      tag: { name: 'v1.0', commit: 0 },
    });
    const fromRepo = { url: repo.url, contextPath: 'service', dockerfilePath: 'docker/Build.dockerfile' };
    const cases = [
      { ref: 'feature', expected: 'feature version', commit: repo.branchCommits[0]! },
      { ref: 'v1.0', expected: 'version one', commit: repo.commits[0]! },
      { ref: repo.commits[1]!, expected: 'version two', commit: repo.commits[1]! },
    ];
    for (const { ref, expected, commit } of cases) {
      const queued = await startBuild(alice.client, { imageName: name('git'), git: { ...fromRepo, ref }, noCache: true });
      expect(queued.source).toMatchObject({ kind: 'GIT', url: repo.url, ref, contextPath: 'service', dockerfilePath: 'docker/Build.dockerfile' });
      const build = await waitForBuild(alice.client, queued.id);
      expect(build.state).toBe('SUCCEEDED');
      expect(build.commit).toBe(commit);
      expect(build.versionTag).toBe(commit.slice(0, 12));
      expect((await buildLog(alice.client, build.id)).map((l) => l.text)).toContain(expected);
    }

    // One image built at v1.0, then twice at the same commit: the second build's version tag and `latest`
    // move to its new image, and the one they leave without a name is removed from the engine; the
    // v1.0 image keeps its own version tag.
    const imageName = name('rebuilt');
    const build = async (ref: string) => waitForBuild(alice.client, (await startBuild(alice.client, { imageName, git: { ...fromRepo, ref }, noCache: true })).id);
    const older = await build('v1.0');
    const first = await build(repo.commits[1]!);
    const second = await build(repo.commits[1]!);
    expect([older.state, first.state, second.state]).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(second.dockerImageId).not.toBe(first.dockerImageId);
    await expect(docker.getImage(first.dockerImageId!).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await docker.getImage(older.dockerImageId!).inspect()).RepoTags).toEqual([`${older.image.repository}:${repo.commits[0]!.slice(0, 12)}`]);
    expect((await docker.getImage(second.dockerImageId!).inspect()).RepoTags.sort()).toEqual(
      [`${second.image.repository}:latest`, `${second.image.repository}:${repo.commits[1]!.slice(0, 12)}`].sort(),
    );
  });

  it('builds a Mercurial repository at a revision', async () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'dockyard-hg-')), 'repo');
    const repo = await createHgRepo(dir, {
      commits: [
        { files: { Dockerfile: 'FROM busybox\nCOPY message /\nRUN cat /message\n', message: 'first revision\n' } },
        { files: { message: 'second revision\n' } },
      ],
      tag: { name: 'release-1', commit: 0 },
    });
    const hg = await startHgServer(dir);
    onTestFinished(() => hg.close());
    const atTag = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('hg'), mercurial: { url: hg.url, ref: 'release-1' }, noCache: true })).id);
    expect(atTag).toMatchObject({ state: 'SUCCEEDED', commit: repo.commits[0] });
    expect((await buildLog(alice.client, atTag.id)).map((l) => l.text)).toContain('first revision');
    const atTip = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('hg'), mercurial: { url: hg.url }, noCache: true })).id);
    expect(atTip).toMatchObject({ state: 'SUCCEEDED', commit: repo.defaultHead });
    expect((await buildLog(alice.client, atTip.id)).map((l) => l.text)).toContain('second revision');
  });

  it('fails a repository build whose ref does not exist, with the reason', async () => {
    const git = await startGitServer();
    onTestFinished(() => git.close());
    const repo = await git.createRepo('small.git', { commits: [{ files: { Dockerfile: 'FROM busybox\n' } }] });
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('noref'), git: { url: repo.url, ref: 'no-such-branch' } })).id);
    expect(build.state).toBe('FAILED');
    expect(build.error).toMatch(/no-such-branch|couldn't find remote ref/i);
  });

  it('fails a build whose tarball URL answers 404, with the reason', async () => {
    const queued = await startBuild(alice.client, { imageName: name('url404'), tarballUrl: fileUrl('/missing.tar.gz') });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('FAILED');
    expect(build.error).toMatch(/404/);
  });
});

describe('states', () => {
  it('builds up to a target stage, with build args and labels', async () => {
    const dockerfile = [
      'FROM busybox AS base',
      'ARG GREETING=unset',
      'RUN echo "greeting is $GREETING"',
      'FROM base AS final',
      'RUN echo "this stage is not built" && exit 1',
    ].join('\n');
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, {
      imageName: name('target'),
      dockerfile,
      target: 'base',
      noCache: true,
      buildArgs: [{ key: 'GREETING', value: 'hello args' }],
      labels: [{ key: 'org.example.team', value: 'builders' }],
    })).id);
    expect(build.state).toBe('SUCCEEDED');
    expect((await buildLog(alice.client, build.id)).map((l) => l.text)).toContain('greeting is hello args');
    const inspected = await docker.getImage(build.image.dockerImageId!).inspect();
    expect(inspected.Config.Labels).toMatchObject({ 'org.example.team': 'builders' });
    expect(JSON.parse(inspected.Config.Labels['io.dockyard.build']!)).toMatchObject({ owner: Number(alice.userId) });
  });

  it('ends FAILED with the error and the output when a RUN step fails', async () => {
    const queued = await startBuild(alice.client, { imageName: name('broken'), dockerfile: 'FROM busybox\nRUN echo about to fail && exit 3\n' });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('FAILED');
    expect(build.error).toMatch(/returned a non-zero code: 3/);
    const log = (await buildLog(alice.client, build.id)).map((l) => l.text);
    expect(log).toContain('about to fail');
    expect(log.at(-1)).toMatch(/^FAILED: .*non-zero code: 3/);
    expect(build.finishedAt).not.toBeNull();
  });

  it('cancels a queued build and a running one', async () => {
    const slow = 'FROM busybox\nRUN echo started && sleep 30\n';
    const running = await startBuild(alice.client, { imageName: name('slow1'), dockerfile: slow, noCache: true });
    const second = await startBuild(alice.client, { imageName: name('slow2'), dockerfile: slow, noCache: true });
    const queued = await startBuild(alice.client, { imageName: name('queued'), dockerfile: slow, noCache: true });
    await waitForBuild(alice.client, running.id, ['RUNNING']);
    await waitForBuild(alice.client, second.id, ['RUNNING']);
    // BUILD_CONCURRENCY is 2: the third waits.
    expect((await alice.client.request(BuildDocument, { id: queued.id })).data!.build.state).toBe('QUEUED');
    const canceledQueued = await alice.client.request(CancelBuildDocument, { id: queued.id });
    expect(canceledQueued.data!.cancelBuild.state).toBe('CANCELED');

    await until(async () => (await buildLog(alice.client, running.id)).some((l) => l.text === 'started'));
    expect((await alice.client.request(CancelBuildDocument, { id: running.id })).data!.cancelBuild.cancelRequested).toBe(true);
    const canceled = await waitForBuild(alice.client, running.id, ['CANCELED', 'SUCCEEDED', 'FAILED', 'ERRORED'], 15_000);
    expect(canceled.state).toBe('CANCELED');
    await alice.client.request(CancelBuildDocument, { id: second.id });
    expect((await waitForBuild(alice.client, second.id)).state).toBe('CANCELED');
    expect((await waitForBuild(alice.client, queued.id)).startedAt).toBeNull();
  });

  it('stores output lines with NUL bytes and broken characters (as U+FFFD) and finishes', async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('nul'), dockerfile: "FROM busybox\nRUN printf 'a\\000b\\n' && echo after\n" })).id);
    expect(build.state).toBe('SUCCEEDED');
    const log = (await buildLog(alice.client, build.id)).map((l) => l.text);
    expect(log).toContain('a\uFFFDb');
    expect(log).toContain('after');
  });

  it('ends TIMED_OUT when the build outlives its timeout', async () => {
    const queued = await startBuild(alice.client, { imageName: name('timeout'), dockerfile: 'FROM busybox\nRUN sleep 30\n', noCache: true, timeoutSeconds: 2 });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('TIMED_OUT');
    expect(new Date(build.finishedAt!).getTime() - new Date(build.startedAt!).getTime()).toBeLessThan(10_000);
  });

  it('runs build steps with no network and the memory limit', async () => {
    const dockerfile = 'FROM busybox\nRUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us && ls /sys/class/net\n';
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('limits'), dockerfile, noCache: true })).id);
    expect(build.state).toBe('SUCCEEDED');
    const log = (await buildLog(alice.client, build.id)).map((l) => l.text);
    expect(log).toContain(String(96 * 2 ** 20));
    expect(log).toContain(String(2 * 100_000)); // BUILD_CPUS=2: 2 × the 100 ms period
    expect(log).toContain('lo');
    expect(log).not.toContain('eth0');
  });
});

describe('bad input fails before anything runs', () => {
  it.each([
    [{ dockerfile: '   \n' }, 'INVALID_DOCKERFILE'],
    [{ dockerfile: 'FROM busybox\nADD https://example.com/x.tgz /x\n' }, 'INVALID_DOCKERFILE'],
    [{ dockerfile: 'FROM dockyard/someone-else/secret\n' }, 'INVALID_DOCKERFILE'],
    [{ dockerfile: 'FROM busybox', tarballUrl: 'http://127.0.0.1/x.tgz' }, 'INVALID_SOURCE'],
    [{}, 'INVALID_SOURCE'],
    [{ tarballUrl: 'http://169.254.169.254/latest/meta-data' }, 'URL_NOT_ALLOWED'],
    [{ tarballUrl: 'http://10.1.2.3/context.tgz' }, 'URL_NOT_ALLOWED'],
    [{ tarballUrl: 'ftp://127.0.0.1/context.tgz' }, 'URL_NOT_ALLOWED'],
    [{ git: { url: 'file:///etc' } }, 'INVALID_SOURCE'],
    [{ git: { url: 'ext::sh -c touch% /tmp/pwned' } }, 'INVALID_SOURCE'],
    [{ mercurial: { url: 'ssh://127.0.0.1/repo' } }, 'INVALID_SOURCE'],
    [{ git: { url: 'http://127.0.0.1/repo.git', ref: '--upload-pack=touch /tmp/pwned' } }, 'INVALID_SOURCE'],
    [{ git: { url: 'http://127.0.0.1/repo.git', contextPath: '../..' } }, 'INVALID_SOURCE'],
    [{ mercurial: { url: 'http://127.0.0.1/repo', dockerfilePath: '/etc/passwd' } }, 'INVALID_SOURCE'],
    [{ dockerfile: 'FROM busybox', tags: ['no spaces allowed'] }, 'INVALID_INPUT'],
    [{ dockerfile: 'FROM busybox', labels: [{ key: 'io.dockyard.owner', value: '1' }] }, 'INVALID_INPUT'],
    [{ dockerfile: 'FROM busybox', buildArgs: [{ key: '1BAD', value: 'x' }] }, 'INVALID_INPUT'],
    [{ dockerfile: 'FROM busybox', push: { registry: 'http://registry' } }, 'INVALID_INPUT'],
  ])('%j → %s', async (source, code) => {
    const result = await alice.client.request(BuildImageDocument, { input: { imageName: name('bad'), ...source } });
    expect(errorCodes(result)).toEqual([code]);
  });

  it('refuses an image name that is not a repository name', async () => {
    const result = await alice.client.request(BuildImageDocument, { input: { imageName: 'Has Spaces', dockerfile: 'FROM busybox' } });
    expect(errorCodes(result)).toEqual(['INVALID_INPUT']);
  });

  it.each([
    ['../escape', { '../escape': 'x' }],
    ['/etc/passwd', { '/etc/passwd': 'x' }],
  ])('refuses a tarball with the entry %s', async (_entry, entries) => {
    const archive = await tarball({ Dockerfile: 'FROM busybox\n', ...entries });
    const result = await multipartRequest(alice.client, BuildImageDocument, { input: { imageName: name('evil'), contextTarball: null } }, [
      { path: 'input.contextTarball', name: 'evil.tar', content: archive },
    ]);
    expect(errorCodes(result)).toEqual(['INVALID_BUILD_CONTEXT']);
  });

  it.each(['..', 'Dockerfile'])('refuses the attachment name %j', async (fileName) => {
    // (The multipart parser already reduces a name with slashes to its last part.)
    const result = await multipartRequest(alice.client, BuildImageDocument, { input: { imageName: name('evil'), dockerfile: 'FROM busybox\n', files: [null] } }, [
      { path: 'input.files.0', name: fileName, content: 'x' },
    ]);
    expect(errorCodes(result)).toEqual(['INVALID_BUILD_CONTEXT']);
  });

  it('refuses an upload over the size cap', async () => {
    const small = await startTestServer({ ...settings, UPLOAD_MAX_MB: '1' });
    const client = new GraphqlClient(small.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const result = await multipartRequest(client, BuildImageDocument, { input: { imageName: name('big'), dockerfile: 'FROM busybox\n', files: [null] } }, [
      { path: 'input.files.0', name: 'big.bin', content: new Uint8Array(2 * 2 ** 20) },
    ]);
    expect(errorCodes(result)).toEqual(['TOO_LARGE']);
  });

  it('needs a user', async () => {
    const result = await new GraphqlClient(server.graphqlUrl).request(BuildImageDocument, { input: { imageName: 'x', dockerfile: 'FROM busybox' } });
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses uploaded sources on an instance that runs no builds (they would wait forever)', async () => {
    const apiOnly = await startTestServer({ BUILD_CONCURRENCY: '0' });
    const client = new GraphqlClient(apiOnly.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const result = await client.request(BuildImageDocument, { input: { imageName: name('api-only'), dockerfile: 'FROM busybox\n' } });
    expect(errorCodes(result)).toEqual(['INVALID_SOURCE']);
    expect(result.errors![0]!.message).toMatch(/BUILD_CONCURRENCY=0/);
  });

  it('checks the Dockerfile inside an uploaded tarball like any other', async () => {
    const archive = await tarball({ Dockerfile: 'FROM busybox\nADD http://169.254.169.254/latest/meta-data /leak\n' });
    const result = await multipartRequest(alice.client, BuildImageDocument, { input: { imageName: name('sneaky'), contextTarball: null } }, [
      { path: 'input.contextTarball', name: 'sneaky.tar', content: archive },
    ]);
    expect(errorCodes(result)).toEqual(['INVALID_DOCKERFILE']);
  });

  it('takes several files in one request, however large the first', async () => {
    const queued = await startBuild(alice.client, { imageName: name('two-files'), dockerfile: 'FROM busybox\nCOPY big small /\nRUN wc -c /big /small\n', files: [null, null] }, [
      { path: 'input.files.0', name: 'big', content: new Uint8Array(3 * 2 ** 20) },
      { path: 'input.files.1', name: 'small', content: 'tiny' },
    ]);
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('SUCCEEDED');
    expect((await buildLog(alice.client, build.id)).map((l) => l.text.trim())).toContain('3145728 /big');
  });
});

describe('push', () => {
  it('pushes with credentials given with the build, and records the digest', async () => {
    const registry = await startRegistry();
    const queued = await startBuild(alice.client, {
      imageName: name('pushed'),
      dockerfile: 'FROM busybox\nRUN echo pushed > /pushed\n',
      tags: ['stable'],
      push: { registry: registry.address, insecure: true, username: registry.username, password: registry.password },
    });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('SUCCEEDED');
    expect(build.image.pushedTo).toBe(`${registry.address}/${build.image.repository}`);
    expect(build.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await registry.tags(build.image.repository)).sort()).toEqual(['stable', build.versionTag].sort());
  });

  it('pushes with stored credentials, which are never shown again', async () => {
    const registry = await startRegistry('stored-user', 'stored-password-1');
    await alice.client.request(SaveRegistryCredentialDocument, { registry: registry.address, username: registry.username, password: registry.password });
    const listed = await alice.client.request(RegistryCredentialsDocument);
    expect(listed.data!.registryCredentials).toContainEqual({ registry: registry.address, username: 'stored-user', createdAt: expect.any(String) });
    expect(JSON.stringify(listed)).not.toContain('stored-password-1');
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('stored'), dockerfile: 'FROM busybox\n', push: { registry: registry.address } })).id);
    expect(build.state).toBe('SUCCEEDED');
    expect((await registry.tags(build.image.repository)).sort()).toEqual(['latest', build.versionTag].sort());
  });

  it('refuses a push marked insecure when the engine does not allow plain HTTP to that registry', async () => {
    // A server that may reach private addresses, so that 10.x passes the request checks and reaches the engine check.
    const lenient = await startTestServer({ ...settings, SOURCE_ALLOW_PRIVATE: 'true', INSTANCE_ID: `insecure-${Date.now()}` });
    const client = new GraphqlClient(lenient.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const refused = await client.request(BuildImageDocument, { input: { imageName: name('insecure'), dockerfile: 'FROM busybox\n', push: { registry: '10.255.255.1:5000', insecure: true } } });
    expect(errorCodes(refused)).toEqual(['INVALID_INPUT']);
    expect(refused.errors![0]!.message).toMatch(/does not allow plain HTTP to 10\.255\.255\.1:5000/);
  });

  it('fails the build when the registry refuses the credentials', async () => {
    const registry = await startRegistry();
    const queued = await startBuild(alice.client, {
      imageName: name('refused'),
      dockerfile: 'FROM busybox\n',
      push: { registry: registry.address, username: registry.username, password: 'wrong-password' },
    });
    const build = await waitForBuild(alice.client, queued.id);
    expect(build.state).toBe('FAILED');
    expect(build.error).toMatch(/unauthorized|authentication required|no basic auth/i);
  });
});

describe('live logs and states over graphql-ws', () => {
  it('streams lines while the build runs; a viewer joining mid-build gets the rest exactly once', async () => {
    const dockerfile = 'FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8; do echo "tick $i"; sleep 0.4; done\n';
    const queued = await startBuild(alice.client, { imageName: name('live'), dockerfile, noCache: true });
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const updates = subscribe(ws, BuildUpdatedDocument, { buildId: queued.id });
    const early = subscribe(ws, BuildLogLinesDocument, { buildId: queued.id, afterSeq: 0 });

    // Read until tick 3 has arrived while the build is still running.
    const earlyLines: { seq: number; text: string }[] = [];
    while (!earlyLines.some((l) => l.text === 'tick 3')) earlyLines.push((await early.next(15_000)).data!.buildLogLines);
    expect((await alice.client.request(BuildDocument, { id: queued.id })).data!.build.state).toBe('RUNNING');

    // A second viewer joins now, resuming after the line the first one last saw.
    const joinedAfter = earlyLines.at(-1)!.seq;
    const late = subscribe(ws, BuildLogLinesDocument, { buildId: queued.id, afterSeq: joinedAfter });
    const rest = await drain(early);
    const lateLines = await drain(late);
    const all = [...earlyLines, ...rest];
    expect(all.map((l) => l.seq)).toEqual(all.map((_, i) => i + 1));
    expect(lateLines).toEqual(rest);
    expect(all.filter((l) => l.text.startsWith('tick ')).map((l) => l.text)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((i) => `tick ${i}`));

    const states: string[] = [];
    for (;;) {
      const update = (await updates.next(15_000)).data!.buildUpdated;
      if (states.at(-1) !== update.state) states.push(update.state);
      if (update.state === 'SUCCEEDED') break;
    }
    expect(states.slice(-2)).toEqual(['RUNNING', 'SUCCEEDED']);
    await ws.dispose();
  });

  it('reports every state of a build that fails at once, in order', async () => {
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const queued = await startBuild(alice.client, { imageName: name('quick'), dockerfile: 'FROM busybox\nRUN exit 1\n' });
    const updates = subscribe(ws, BuildUpdatedDocument, { buildId: queued.id });
    const states: string[] = [];
    for (;;) {
      const state = (await updates.next(15_000)).data!.buildUpdated.state;
      if (states.at(-1) !== state) states.push(state);
      if (state === 'FAILED') break;
    }
    // It may already run when the subscription starts; from there on nothing is skipped.
    expect(states.slice(states.indexOf('RUNNING'))).toEqual(['RUNNING', 'FAILED']);
    await ws.dispose();
  });

  it('replays a finished build from any point, then completes', async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('replay'), dockerfile: 'FROM busybox\nRUN echo one && echo two\n', noCache: true })).id);
    const stored = await buildLog(alice.client, build.id);
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const replay = await drain(subscribe(ws, BuildLogLinesDocument, { buildId: build.id, afterSeq: 2 }));
    expect(replay).toEqual(stored.filter((l) => l.seq > 2).map(({ seq, stream, text }) => ({ seq, stream, text })));
    await ws.dispose();
  });
});

describe('ownership', () => {
  it("reads another user's builds and images exactly like missing ones", async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('private'), dockerfile: 'FROM busybox\n' })).id);
    const missingBuild = await bob.client.request(BuildDocument, { id: '2147483000' });
    for (const result of [
      await bob.client.request(BuildDocument, { id: build.id }),
      await bob.client.request(CancelBuildDocument, { id: build.id }),
    ]) {
      expect(result.errors).toEqual(missingBuild.errors!.map((e) => ({ ...e, path: result.errors![0]!.path })));
    }
    const missingImage = await bob.client.request(ImageDocument, { id: '2147483000' });
    const theirs = await bob.client.request(ImageDocument, { id: build.image.id });
    expect(theirs.errors).toEqual(missingImage.errors);
    expect(errorCodes(await bob.client.request(DeleteImageDocument, { id: build.image.id }))).toEqual(['NOT_FOUND']);
    expect((await bob.client.request(ImagesDocument)).data!.images.map((i) => i.id)).not.toContain(build.image.id);

    const ws = connectWs(server.wsUrl, { cookie: bob.client.cookieHeader }).client;
    expect(errorCodes(await subscribe(ws, BuildLogLinesDocument, { buildId: build.id }).next())).toEqual(['NOT_FOUND']);
    expect(errorCodes(await subscribe(ws, BuildUpdatedDocument, { buildId: build.id }).next())).toEqual(['NOT_FOUND']);
    await ws.dispose();
    // Still there for its owner.
    expect((await alice.client.request(ImageDocument, { id: build.image.id })).data!.image.id).toBe(build.image.id);
  });

  it('keeps image names per user: the same name makes two images', async () => {
    const shared = name('same');
    const a = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: shared, dockerfile: 'FROM busybox\n' })).id);
    const b = await waitForBuild(bob.client, (await startBuild(bob.client, { imageName: shared, dockerfile: 'FROM busybox\n' })).id);
    expect(a.image.id).not.toBe(b.image.id);
    expect(a.image.repository).not.toBe(b.image.repository);
  });
});

describe('deleting an image', () => {
  it('removes the engine image, the builds and their logs', async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: name('doomed'), dockerfile: 'FROM busybox\nRUN echo doomed > /d\n', noCache: true })).id);
    expect(build.state).toBe('SUCCEEDED');
    await docker.getImage(build.image.dockerImageId!).inspect();
    const deleted = await alice.client.request(DeleteImageDocument, { id: build.image.id });
    expect(deleted.errors).toBeUndefined();
    await expect(docker.getImage(build.image.dockerImageId!).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(errorCodes(await alice.client.request(BuildDocument, { id: build.id }))).toEqual(['NOT_FOUND']);
    expect(errorCodes(await alice.client.request(ImageDocument, { id: build.image.id }))).toEqual(['NOT_FOUND']);
  });

  it('refuses while a build of it is running', async () => {
    const queued = await startBuild(alice.client, { imageName: name('busy'), dockerfile: 'FROM busybox\nRUN sleep 20\n', noCache: true });
    await waitForBuild(alice.client, queued.id, ['RUNNING']);
    expect(errorCodes(await alice.client.request(DeleteImageDocument, { id: queued.image.id }))).toEqual(['CONFLICT']);
    await alice.client.request(CancelBuildDocument, { id: queued.id });
    await waitForBuild(alice.client, queued.id);
  });
});

describe('durability', () => {
  it('runs a build queued before a restart, and ends a build that was running ERRORED', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dockyard-restart-'));
    const env = { ...settings, DATA_DIR: dataDir, BUILD_CONCURRENCY: '1', INSTANCE_ID: `restart-${Date.now()}` };
    const first = await startTestServer(env);
    const client = new GraphqlClient(first.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const running = await startBuild(client, { imageName: name('interrupted'), dockerfile: 'FROM busybox\nRUN sleep 30\n', noCache: true });
    const waiting = await startBuild(client, { imageName: name('waiting'), dockerfile: 'FROM busybox\nRUN echo after the restart\n', noCache: true });
    await waitForBuild(client, running.id, ['RUNNING']);
    await first.close();

    const second = await startTestServer(env);
    client.url = second.graphqlUrl;
    expect(await waitForBuild(client, running.id)).toMatchObject({ state: 'ERRORED', error: expect.stringMatching(/service stopped/) });
    const after = await waitForBuild(client, waiting.id);
    expect(after.state).toBe('SUCCEEDED');
    expect((await buildLog(client, after.id)).map((l) => l.text)).toContain('after the restart');
  });
});


async function until(predicate: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
