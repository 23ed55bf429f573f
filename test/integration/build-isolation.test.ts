// Tenant isolation on the build path, tried as an attacker would (issue 10's four holes), on the real
// engine and a real registry: bob keeps a secret in his image; alice tries to build on it or overwrite it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { BuildImageDocument, CreateApiTokenDocument } from '../generated/graphql.ts';
import { errorCodes } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { buildLog, startBuild, waitForBuild } from '../support/builds.ts';
import { startRegistry } from '../support/registry.ts';
import { startFileServer } from '../support/file-server.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const server = await startTestServer({ BUILD_CONCURRENCY: '2', SOURCE_ALLOWED_HOSTS: '127.0.0.1', DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-isolation-')) });
const alice = await loggedInUser(server.graphqlUrl, 'alice');
const bob = await loggedInUser(server.graphqlUrl, 'bob');

// bob's image, with a secret only his builds may read.
const victim = await waitForBuild(bob.client, (await startBuild(bob.client, { imageName: 'app', dockerfile: 'FROM busybox\nRUN echo bob-secret > /secret.txt\n' })).id);
const victimId = victim.image.dockerImageId!;
const victimName = `${victim.image.repository}:latest`;
const fileServer = await startFileServer();

async function refusal(dockerfile: string, push?: { registry: string; repository?: string }): Promise<{ code: unknown; message: string }> {
  const result = await alice.client.request(BuildImageDocument, { input: { imageName: 'attack', dockerfile, ...(push ? { push } : {}) } });
  expect(result.data).toBeNull();
  return { code: errorCodes(result)[0], message: result.errors?.[0]?.message ?? '' };
}

/** bob's name still names bob's image on the engine. */
async function expectVictimIntact(): Promise<void> {
  expect((await docker.getImage(victimName).inspect()).Id).toBe(victimId);
}

describe('bases are resolved by the service', () => {
  it('refuses a short image-id prefix in FROM and COPY --from, naming the line', async () => {
    expect(victim.state).toBe('SUCCEEDED');
    const prefix = victimId.slice('sha256:'.length, 'sha256:'.length + 6);
    const from = await refusal(`FROM ${prefix}\nRUN cat /secret.txt\n`);
    expect(from).toEqual({ code: 'INVALID_DOCKERFILE', message: expect.stringMatching(/^Line 1: FROM "[0-9a-f]{6}" is not an image you can build on/) });
    // A prefix with a letter: digits alone are a stage index to the engine.
    const letters = victimId.slice(7).match(/^[0-9]*[a-f][0-9a-f]*/)![0].slice(0, 12);
    const copy = await refusal(`FROM busybox\nCOPY --from=${letters} /secret.txt /s\n`);
    expect(copy).toEqual({ code: 'INVALID_DOCKERFILE', message: expect.stringMatching(/^Line 2: COPY --from ".*" is not an image you can build on/) });
  });

  it('reads another user’s image exactly like a missing one, whatever its spelling', async () => {
    const other = await refusal(`FROM ${victim.image.repository}\n`);
    const missing = await refusal(`FROM dockyard/${bob.login}/nothing-here\n`);
    expect(other.code).toBe('INVALID_DOCKERFILE');
    expect(other.message.replace(victim.image.repository, 'X')).toBe(missing.message.replace(`dockyard/${bob.login}/nothing-here`, 'X'));
    for (const spelling of [`docker.io/${victim.image.repository}`, `index.docker.io/${victim.image.repository}:latest`, `${victim.image.repository}:${victim.versionTag}`]) {
      expect((await refusal(`FROM ${spelling}\n`)).code).toBe('INVALID_DOCKERFILE');
    }
  });

  it('refuses what a directive trick hides from a checker (a FROM, an ADD of a loopback URL), and never fetches the URL', async () => {
    const { url, requests } = fileServer;
    const hiddenFrom = await refusal(`# foo=bar\n# escape=\`\nFROM busybox\nRUN echo \`\nFROM ${victim.image.repository}\n`);
    expect(hiddenFrom).toEqual({ code: 'INVALID_DOCKERFILE', message: expect.stringMatching(/^Line 2: this escape directive would be ignored/) });
    // Without the ignored directive the line is read as the engine reads it: an instruction of its own.
    const plain = await refusal(`FROM busybox\nRUN echo \`\nFROM ${victim.image.repository}\n`);
    expect(plain.message).toMatch(/^Line 3: FROM/);
    const hiddenAdd = await refusal(`# foo=bar\nFROM busybox\nRUN echo \`\nADD ${url('/x.tar')} /\n`);
    expect(hiddenAdd).toEqual({ code: 'INVALID_DOCKERFILE', message: expect.stringMatching(/^Line 4: ADD from a remote source/) });
    expect(requests()).toEqual([]);
  });

  it('builds on the user’s own image and on an operator base, by ids the service resolved', async () => {
    const base = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'base', dockerfile: 'FROM busybox\nRUN echo alice-base > /base.txt\n', tags: ['v1'] })).id);
    const derived = await waitForBuild(
      alice.client,
      (await startBuild(alice.client, { imageName: 'derived', dockerfile: `ARG V=v0\nFROM ${base.image.repository}:\${V} AS b\nFROM busybox\nCOPY --from=b /base.txt /b.txt\nRUN cat /b.txt\n`, buildArgs: [{ key: 'V', value: 'v1' }] })).id,
    );
    expect(derived.state).toBe('SUCCEEDED');
    const log = (await buildLog(alice.client, derived.id)).map((l) => l.text);
    expect(log).toContain(`line 2: ${base.image.repository}:v1 is ${base.image.dockerImageId}`);
    expect(log.filter((line) => line.startsWith('Step '))).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^Step \\d/\\d : FROM ${base.image.dockerImageId!.slice('sha256:'.length)} AS stage-0\\.$`))]));
    expect(log).toContain('alice-base');
  });

  it('fails a build whose allowed base is not on the engine, saying why', async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'no-base', dockerfile: 'FROM alpine:latest\n' })).id);
    expect(build).toMatchObject({ state: 'FAILED', error: expect.stringMatching(/^Line 1: FROM "alpine:latest" is not an image you can build on/) });
  });

  it('ends a Dockerfile the engine cannot parse FAILED with the engine’s message, at the user’s line', async () => {
    const build = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'typo', dockerfile: '# a comment\nFROM busybox\n\nFORM busybox\n' })).id);
    expect(build.state).toBe('FAILED');
    expect(build.error).toMatch(/line 4: unknown instruction: FORM/);
  });
});

describe('pushes cannot touch local names', () => {
  it('refuses Docker Hub and registries the engine would read as Docker Hub names', async () => {
    for (const registry of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'dockyard', 'localhost.']) {
      const { code } = await refusal('FROM busybox\n', { registry, repository: `dockyard/${bob.login}/app` });
      expect([registry, code]).toEqual([registry, 'INVALID_INPUT']);
    }
    await expectVictimIntact();
  });

  it('leaves no registry-qualified name on the engine after a push that succeeds or fails, and none can be built on', async () => {
    const registry = await startRegistry();
    const pushed = await waitForBuild(
      alice.client,
      (await startBuild(alice.client, { imageName: 'pushed', dockerfile: 'FROM busybox\n', push: { registry: registry.address, repository: `dockyard/${bob.login}/app`, username: registry.username, password: registry.password } })).id,
    );
    expect(pushed.state).toBe('SUCCEEDED');
    expect(await registry.tags(`dockyard/${bob.login}/app`)).toContain('latest');
    const failed = await waitForBuild(
      alice.client,
      (await startBuild(alice.client, { imageName: 'refused-push', dockerfile: 'FROM busybox\nRUN echo x > /x\n', push: { registry: registry.address, username: registry.username, password: 'wrong' } })).id,
    );
    expect(failed.state).toBe('FAILED');
    const names = (await docker.listImages()).flatMap((image) => image.RepoTags ?? []);
    expect(names.filter((name) => name.startsWith(`${registry.address}/`))).toEqual([]);
    await expectVictimIntact();
    expect((await refusal(`FROM ${registry.address}/${failed.image.repository}:latest\n`)).code).toBe('INVALID_DOCKERFILE');
  });

  it('keeps boatyard’s image_name from retagging another user’s image (pushed only as a registry-qualified name)', async () => {
    const registry = await startRegistry();
    const instance = await startTestServer({ BUILD_CONCURRENCY: '1', SOURCE_ALLOWED_HOSTS: '127.0.0.1', BOATYARD_REGISTRY: registry.address, DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-isolation-')) });
    const token = (await alice.client.request(CreateApiTokenDocument, { name: 'boatyard' })).data!.createApiToken.token;
    const post = await fetch(`${instance.url}/api/v1/build`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image_name: `dockyard/${bob.login}/app`, dockerfile: 'FROM busybox\nRUN echo attacker > /secret.txt\n', username: registry.username, password: registry.password }),
    });
    expect(post.status).toBe(200);
    const { JobIdentifier: id } = (await post.json()) as { JobIdentifier: string };
    const build = await waitForBuild(alice.client, id);
    expect(build.state).toBe('SUCCEEDED');
    expect(build.image.repository).toBe(`dockyard/${alice.login}/app`);
    expect(build.image.pushedTo).toBe(`${registry.address}/dockyard/${bob.login}/app`);
    await expectVictimIntact();
    const names = (await docker.listImages()).flatMap((image) => image.RepoTags ?? []);
    expect(names.filter((name) => name.startsWith(`${registry.address}/`))).toEqual([]);
  }, 60_000);

  it('refuses to build on an image with ONBUILD triggers (the engine would run them unchecked)', async () => {
    // Made on the engine directly: Dockyard refuses ONBUILD in Dockerfiles, but an operator's base could carry triggers.
    const tag = `dockyard-test-onbuild-${Date.now()}:latest`;
    const container = await docker.createContainer({ Image: 'busybox:latest', Cmd: ['true'] });
    await container.commit({ repo: tag.split(':')[0], tag: 'latest', changes: ['ONBUILD RUN echo trigger'] });
    await container.remove();
    try {
      const instance = await startTestServer({ BUILD_CONCURRENCY: '1', BUILD_BASE_IMAGES: `busybox:latest,${tag}`, DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-isolation-')) });
      const carol = await loggedInUser(instance.graphqlUrl, 'carol');
      const build = await waitForBuild(carol.client, (await startBuild(carol.client, { imageName: 'on-trigger', dockerfile: `FROM ${tag}\n` })).id);
      expect(build).toMatchObject({ state: 'FAILED', error: expect.stringMatching(/^Line 1: FROM ".*": the image has ONBUILD triggers/) });
    } finally {
      await docker.getImage(tag).remove({ force: true }).catch(() => {});
    }
  }, 60_000);
});
