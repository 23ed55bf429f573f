// boatyard's REST surface over HTTP, end to end on the real Docker engine and a real local registry:
// the seed's four ways to build (a Dockerfile, a tarball URL, a GitHub-style repository at a tag, a
// tarball sent with the request, the last one with curl), status and logs, the push with the
// request's credentials, and the error cases.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CreateApiTokenDocument } from '../generated/graphql.ts';
import { loggedInUser, type TestUser } from '../support/accounts.ts';
import { tarball } from '../support/builds.ts';
import { startGitServer, type GitServer } from '../support/git-server.ts';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { startFileServer } from '../support/file-server.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const run = promisify(execFile);
const work = mkdtempSync(path.join(tmpdir(), 'dockyard-rest-boatyard-'));

/** Serves tarballs over http on loopback (tar_url). */
const { files, url: fileUrl } = await startFileServer();

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- wire JSON, checked field by field

interface Boatyard {
  server: TestServer;
  registry: TestRegistry;
  git: GitServer;
  alice: TestUser;
  aliceToken: string;
  bobToken: string;
  /** The push login, as boatyard's manifest gives it. */
  manifest: { username: string; password: string; email: string };
  call(method: string, urlPath: string, body?: unknown, token?: string | null): Promise<{ status: number; body: Json }>;
  /** Polls the status until it is no longer Building or Pushing; every status seen, in order, once each. */
  statuses(jobId: string): Promise<string[]>;
}

/**
 * A registry, a git server with boatyard's example repository, and an instance that pushes to the one
 * and clones from the other; two users with API tokens. Started inside the test, stopped with it.
 */
async function boatyard(): Promise<Boatyard> {
  const registry = await startRegistry();
  const git = await startGitServer();
  onTestFinished(() => git.close());
  await git.createRepo('tutumcloud/docker-hello-world', {
    commits: [{ files: { Dockerfile: 'FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\n', 'hello.txt': 'hello from the repository at v1.0\n' } }, { files: { 'hello.txt': 'later\n' } }],
    tag: { name: 'v1.0', commit: 0 },
  });
  const server = await startTestServer({
    BUILD_CONCURRENCY: '2',
    SOURCE_ALLOWED_HOSTS: '127.0.0.1',
    BOATYARD_REGISTRY: registry.address,
    BOATYARD_GIT_BASE_URL: git.url,
    DATA_DIR: mkdtempSync(path.join(work, 'data-')),
  });
  const tokenOf = async (user: TestUser) => (await user.client.request(CreateApiTokenDocument, { name: 'boatyard' })).data!.createApiToken.token;
  const alice = await loggedInUser(server.graphqlUrl, 'alice');
  const aliceToken = await tokenOf(alice);
  const bobToken = await tokenOf(await loggedInUser(server.graphqlUrl, 'bob'));
  const call = async (method: string, urlPath: string, body?: unknown, token: string | null = aliceToken) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    let payload: string | undefined;
    if (typeof body === 'string') payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const response = await fetch(`${server.url}${urlPath}`, { method, headers, body: payload });
    return { status: response.status, body: (await response.json()) as Json };
  };
  const statuses = async (jobId: string) => {
    const seen: string[] = [];
    const deadline = Date.now() + 90_000;
    for (;;) {
      const { status, body } = await call('GET', `/api/v1/${jobId}/status`);
      expect(status).toBe(200);
      if (seen.at(-1) !== body.Status) seen.push(body.Status);
      if (body.Status !== 'Building' && body.Status !== 'Pushing') return seen;
      if (Date.now() > deadline) throw new Error(`job ${jobId} is still ${body.Status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const manifest = { username: registry.username, password: registry.password, email: 'user@example.com' };
  return { server, registry, git, alice, aliceToken, bobToken, manifest, call, statuses };
}

describe("the seed's builds", () => {
  it('from a Dockerfile: Building, Pushing, Finished; pushed with the given login; logs as one string', { timeout: 120_000 }, async () => {
    const { call, statuses, manifest, registry } = await boatyard();
    const started = await call('POST', '/api/v1/build', { image_name: 'user/image', ...manifest, dockerfile: 'FROM busybox\nCMD echo "Hello world"' });
    expect(started).toEqual({ status: 200, body: { JobIdentifier: expect.stringMatching(/^\d+$/) } });
    const seen = await statuses(started.body.JobIdentifier);
    expect(seen.at(-1)).toBe('Finished');
    expect(seen.every((s) => ['Building', 'Pushing', 'Finished'].includes(s))).toBe(true);
    expect(await registry.tags('user/image')).toContain('latest'); // the repository boatyard was asked for
    const { body } = await call('GET', `/api/v1/${started.body.JobIdentifier}/logs`);
    expect(body.Logs).toMatch(/^Fetching logs\.\.\.\n/);
    expect(body.Logs).toContain('Successfully built');
    expect(body.Logs).toContain(`pushing ${registry.address}/user/image:latest`);
  });

  it('from a tarball URL (keys in any case), and from a GitHub repository at a tag on BOATYARD_GIT_BASE_URL', { timeout: 120_000 }, async () => {
    const { call, statuses, manifest, registry } = await boatyard();
    files.set('/v1.0.tar.gz', await tarball({ Dockerfile: 'FROM busybox\nRUN echo from a tarball url\n' }, true));
    const url = fileUrl('/v1.0.tar.gz');
    const fromUrl = await call('POST', '/api/v1/build', { Image_Name: 'user/from-url', Username: registry.username, Password: registry.password, Email: 'user@example.com', Tar_Url: url });
    const fromGithub = await call('POST', '/api/v1/build', {
      image_name: 'user/from-github', ...manifest, github_username: 'tutumcloud', github_reponame: 'docker-hello-world', github_tag: 'v1.0',
    });
    expect(await statuses(fromUrl.body.JobIdentifier)).toContain('Finished');
    expect((await call('GET', `/api/v1/${fromUrl.body.JobIdentifier}/logs`)).body.Logs).toContain('from a tarball url');
    expect(await statuses(fromGithub.body.JobIdentifier)).toContain('Finished');
    const { body } = await call('GET', `/api/v1/${fromGithub.body.JobIdentifier}/logs`);
    expect(body.Logs).toContain('hello from the repository at v1.0');
    expect(body.Logs).not.toContain('later');
  });

  it('from a tarball sent with the request (multipart: the tarball, then the JSON manifest), with curl', { timeout: 120_000 }, async () => {
    const { server, call, statuses, manifest, registry, aliceToken } = await boatyard();
    const dir = mkdtempSync(path.join(work, 'curl-'));
    writeFileSync(path.join(dir, 'dockertarexample.tar.gz'), await tarball({ Dockerfile: 'FROM busybox\nCOPY note.txt /\nRUN cat /note.txt\n', 'note.txt': 'sent with the request\n' }, true));
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ image_name: 'user/tarred:v2', ...manifest }));
    const { stdout } = await run(
      'curl',
      ['-s', `${server.url}/api/v1/build`, '-H', `Authorization: Bearer ${aliceToken}`, '-F', 'TarFile=@dockertarexample.tar.gz;type=application/x-gzip', '-F', 'Json=@manifest.json;type=application/json'],
      { cwd: dir },
    );
    const { JobIdentifier } = JSON.parse(stdout) as { JobIdentifier: string };
    expect(await statuses(JobIdentifier)).toContain('Finished');
    expect((await call('GET', `/api/v1/${JobIdentifier}/logs`)).body.Logs).toContain('sent with the request');
    expect(await registry.tags('user/tarred')).toContain('v2');
  });
});

describe('failures', () => {
  it('a failing Dockerfile is "Failed: …" with the error at the end of the logs; a refused push fails the build', { timeout: 120_000 }, async () => {
    const { call, statuses, manifest, registry } = await boatyard();
    const broken = await call('POST', '/api/v1/build', { image_name: 'user/broken', ...manifest, dockerfile: 'FROM busybox\nRUN echo breaking && exit 4\n' });
    const denied = await call('POST', '/api/v1/build', { image_name: 'user/denied', username: registry.username, password: 'wrong-password', email: 'x@example.com', dockerfile: 'FROM busybox\n' });
    expect((await statuses(broken.body.JobIdentifier)).at(-1)).toMatch(/^Failed: .*non-zero code: 4/);
    const { body } = await call('GET', `/api/v1/${broken.body.JobIdentifier}/logs`);
    expect(body.Logs).toContain('breaking');
    expect(body.Logs.trimEnd().split('\n').at(-1)).toMatch(/^FAILED: .*non-zero code: 4/);
    const seen = await statuses(denied.body.JobIdentifier);
    expect(seen.at(-1)).toMatch(/^Failed: /);
    expect(await registry.tags('user/denied')).toEqual([]);
  });

  it('refuses what boatyard refused, in its {"Error"} shape; needs an API token; unknown ids, another user\'s, unknown routes', { timeout: 60_000 }, async () => {
    const { call, statuses, manifest, bobToken, aliceToken } = await boatyard();
    const insufficient = { status: 400, body: { Error: 'Insufficient Information.  Must provide at least an Image Name and a Dockerfile/Tarurl.' } };
    expect(await call('POST', '/api/v1/build', { ...manifest, dockerfile: 'FROM busybox\n' })).toEqual(insufficient);
    expect(await call('POST', '/api/v1/build', { image_name: 'user/nothing', ...manifest })).toEqual(insufficient);
    expect(await call('POST', '/api/v1/build', '{"image_name": ')).toEqual({ status: 400, body: { Error: expect.stringMatching(/JSON/) } });
    expect(await call('POST', '/api/v1/build', { image_name: 'user/Not Valid', ...manifest, dockerfile: 'FROM busybox\n' })).toEqual({
      status: 400,
      body: { Error: expect.stringMatching(/^image_name: An image name has lower-case letters/) },
    });
    expect(await call('POST', '/api/v1/build', { image_name: 'user/half', username: 'someone', email: 'x@example.com', dockerfile: 'FROM busybox\n' })).toEqual({
      status: 400,
      body: { Error: expect.stringMatching(/username and a password/) },
    });

    for (const token of [null, 'dyt_not.a-token']) {
      const answer = await call('POST', '/api/v1/build', { image_name: 'user/image', ...manifest, dockerfile: 'FROM busybox\n' }, token);
      expect(answer).toEqual({ status: 401, body: { Error: expect.stringMatching(/Authorization: Bearer/) } });
      expect((await call('GET', '/api/v1/1/status', undefined, token)).status).toBe(401);
    }

    const unknown = { status: 404, body: { Error: "Jobid doesn't exist in the cache.  Bad request." } };
    const started = await call('POST', '/api/v1/build', { image_name: 'user/private', ...manifest, dockerfile: 'FROM busybox\n' });
    const id = started.body.JobIdentifier as string;
    for (const [jobId, token] of [[id, bobToken], ['999999', aliceToken], ['ef0c7a10-31a5-4140-6087-df97c2bebcb2', aliceToken]] as const) {
      expect(await call('GET', `/api/v1/${jobId}/status`, undefined, token)).toEqual(unknown);
      expect(await call('GET', `/api/v1/${jobId}/logs`, undefined, token)).toEqual(unknown);
    }
    expect(await call('GET', '/api/v1/nothing')).toEqual({ status: 404, body: { Error: 'Resource not found' } });
    expect(await call('GET', '/api/v1/build')).toEqual({ status: 405, body: { Error: 'Method not allowed' } });
    expect(await statuses(id)).toContain('Finished');
  });
});
