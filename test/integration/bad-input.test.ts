// Bad input on every surface gets a clear refusal with a code, never a 500 nor a stack trace in the
// server log: NUL characters, lone surrogates and over-long strings (GraphQL over HTTP, SSE and
// WebSocket, connectionParams, Kabuto and boatyard bodies, query strings and paths), oversized
// GraphQL bodies (JSON, chunked, multipart `operations`), boatyard repository names that would leave
// BOATYARD_GIT_BASE_URL, subscriptions refused over SSE, and WebSocket messages over the size cap.
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import WebSocket from 'ws';
import { CreateApiTokenDocument, CreatePipelineDocument } from '../generated/graphql.ts';
import { loggedInUser, PASSWORD } from '../support/accounts.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { startTestServer, uniqueLogin } from '../support/server.ts';
import { connectWs } from '../support/ws-client.ts';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- wire JSON, checked field by field

const GIT_BASE = 'http://127.0.0.1:9/git/base';
const server = await startTestServer({
  BOATYARD_GIT_BASE_URL: GIT_BASE,
  BOATYARD_REGISTRY: '127.0.0.1:5999',
  SOURCE_ALLOWED_HOSTS: '127.0.0.1',
});
const alice = await loggedInUser(server.graphqlUrl, 'bad');
const aliceToken = (await alice.client.request(CreateApiTokenDocument, { name: 'bad input' })).data!.createApiToken.token;

const NUL = 'a\u0000b';
const SURROGATE = 'a\ud800b';

// The server runs in this process: whatever it logs goes through console.error / console.warn.
let logged: MockInstance[] = [];
beforeEach(() => {
  logged = [vi.spyOn(console, 'error'), vi.spyOn(console, 'warn')];
});
afterEach(() => {
  const calls = logged.flatMap((spy) => spy.mock.calls);
  for (const spy of logged) spy.mockRestore();
  expect(calls, 'the server logged').toEqual([]);
});

/** The one error of a refused operation, and the response status. */
async function refused(client: GraphqlClient, body: unknown, headers: Record<string, string> = {}) {
  const result = await client.raw(body, headers);
  expect(result.data).toBeUndefined();
  expect(result.errors).toHaveLength(1);
  return { status: result.response.status, error: result.errors![0]! };
}

describe('strings in GraphQL arguments', () => {
  it('refuses a NUL, a lone surrogate or an over-long string in variables with INVALID_INPUT naming the argument path', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['mutation($n: String!) { createPipeline(name: $n) { id } }', { n: NUL }, 'name', /^name holds a NUL character\.$/],
      ['mutation($n: String!) { createApiToken(name: $n) { token } }', { n: SURROGATE }, 'name', /lone UTF-16 surrogate/],
      ['mutation($e: String!) { register(login: "whoever", password: "correct horse battery", email: $e) { user { id } } }', { e: `x${NUL}@example.test` }, 'email', /NUL/],
      ['mutation($u: String!) { saveRegistryCredential(registry: "registry.example.test", username: $u, password: "secret") { registry } }', { u: 'x'.repeat(300 * 1024) }, 'username', /longer than 262144 characters/],
      ['mutation($i: BuildImageInput!) { buildImage(input: $i) { id } }', { i: { imageName: 'app', dockerfile: `FROM busybox\nRUN echo ${NUL}\n` } }, 'input.dockerfile', /NUL/],
      ['mutation($i: AddJobInput!) { addJob(input: $i) { id } }', { i: { pipelineId: '1', imageId: '1', commandLine: `echo ${SURROGATE}` } }, 'input.commandLine', /surrogate/],
      ['mutation($i: AddJobInput!) { addJob(input: $i) { id } }', { i: { pipelineId: '1', imageId: '1', command: ['echo', NUL] } }, 'input.command[1]', /NUL/],
      ['mutation($e: [KeyValueInput!]) { addJob(input: { pipelineId: "1", imageId: "1", commandLine: "true", env: $e }) { id } }', { e: [{ key: 'A', value: 'ok' }, { key: 'B', value: SURROGATE }] }, 'input.env[1].value', /surrogate/],
    ];
    for (const [query, variables, field, message] of cases) {
      const { status, error } = await refused(alice.client, { query, variables });
      expect(error.extensions, query).toEqual({ code: 'INVALID_INPUT', field });
      expect(error.message).toMatch(message);
      expect(status).toBe(400);
    }
    const { data } = await alice.client.raw<Json>({ query: '{ pipelines(first: 50) { edges { node { name } } } }' });
    expect(data.pipelines.edges).toEqual([]);
  });

  it('refuses a NUL in an inline literal the same way', async () => {
    const { status, error } = await refused(alice.client, { query: 'mutation { createPipeline(name: "a\\u0000b") { id } }' });
    expect(error.extensions).toEqual({ code: 'INVALID_INPUT', field: 'name' });
    expect(status).toBe(400);
    const nested = await refused(alice.client, { query: 'mutation { addJob(input: { pipelineId: "1", imageId: "1", command: ["echo", "\\u0000"] }) { id } }' });
    expect(nested.error.extensions).toEqual({ code: 'INVALID_INPUT', field: 'input.command[1]' });
  });

  it('keeps the fields\' own rules: a 201-character pipeline name, a 300 KiB command; a Dockerfile may be up to 1 MiB', async () => {
    const name = await alice.client.raw({ query: 'mutation($n: String!) { createPipeline(name: $n) { id } }', variables: { n: 'x'.repeat(201) } });
    expect(name.errors![0]!.message).toBe('A pipeline name has 1 to 200 characters.');
    expect(name.errors![0]!.extensions).toEqual({ code: 'INVALID_INPUT', field: 'name' });
    // Longer than any string but a Dockerfile may be: the guard names it; under the body cap.
    const long = await refused(alice.client, { query: 'mutation($i: AddJobInput!) { addJob(input: $i) { id } }', variables: { i: { pipelineId: '1', imageId: '1', commandLine: 'x'.repeat(300 * 1024) } } });
    expect(long.error.extensions).toEqual({ code: 'INVALID_INPUT', field: 'input.commandLine' });
    // A 600 KiB Dockerfile is not too long: what refuses it here is the builds service (this instance
    // runs no builds, and a Dockerfile is a file upload), past the guard.
    const dockerfile = `FROM busybox\n${'# comment\n'.repeat(60_000)}`;
    const build = await alice.client.raw<Json>({ query: 'mutation($i: BuildImageInput!) { buildImage(input: $i) { id state } }', variables: { i: { imageName: 'long-dockerfile', dockerfile } } });
    expect(build.errors).toEqual([expect.objectContaining({ extensions: { code: 'INVALID_SOURCE', field: 'source' } })]);
  });

  it('over a WebSocket: variables and connectionParams', async () => {
    const { client } = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader });
    const results: Json[] = [];
    for await (const result of client.iterate({ query: 'mutation($n: String!) { createPipeline(name: $n) { id } }', variables: { n: SURROGATE } })) results.push(result);
    expect(results).toEqual([{ errors: [expect.objectContaining({ message: expect.stringMatching(/surrogate/), extensions: { code: 'INVALID_INPUT', field: 'name' } })] }]);
    await client.dispose();

    const bad = connectWs(server.wsUrl, { connectionParams: { authorization: `Bearer dyt_${NUL}` } });
    await expect(
      (async () => {
        for await (const _ of bad.client.iterate({ query: '{ __typename }' })) void _;
      })(),
    ).rejects.toBeDefined();
    expect(await bad.closed).toEqual({ code: 4400, reason: 'INVALID_INPUT: connectionParams.authorization' });
    await bad.client.dispose();
  });

  it('over SSE: 400 for an argument the guard refuses', async () => {
    const response = await sse({ query: 'subscription($id: ID!) { jobUpdated(jobId: $id) { id } }', variables: { id: NUL } }, alice.client.cookieHeader);
    expect(response.status).toBe(400);
    expect(response.events).toEqual([{ errors: [expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'jobId' } })] }]);
  });
});

describe('GraphQL bodies over the cap', () => {
  const tooLarge = { message: 'A GraphQL request without files is limited to 1048576 bytes.', extensions: { code: 'TOO_LARGE' } };
  const bigBuild = () => JSON.stringify({ query: 'mutation($i: BuildImageInput!) { buildImage(input: $i) { id } }', variables: { i: { imageName: 'big', dockerfile: `FROM busybox\n${'#'.repeat(10 * 2 ** 20)}\n` } } });

  it('413 TOO_LARGE for a 10 MB Dockerfile in JSON, in a chunked JSON body, and in a multipart operations field', async () => {
    const json = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', cookie: alice.client.cookieHeader! }, body: bigBuild() });
    expect(json.status).toBe(413);
    expect(await json.json()).toEqual({ errors: [tooLarge] });

    const body = new Blob([bigBuild()]).stream();
    const chunked = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', cookie: alice.client.cookieHeader! }, body, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toEqual({ errors: [tooLarge] });

    const form = new FormData();
    form.set('operations', bigBuild());
    form.set('map', '{}');
    const multipart = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'x-graphql-yoga-csrf': '1', cookie: alice.client.cookieHeader! }, body: form });
    expect(multipart.status).toBe(413);
    expect(await multipart.json()).toEqual({ errors: [{ message: 'The operations of a GraphQL multipart request are limited to 1048576 bytes.', extensions: { code: 'TOO_LARGE' } }] });
  });

  it('400 INVALID_INPUT for a multipart request that is not one, and for a NUL in its variables', async () => {
    const form = new FormData();
    form.set('operations', '{"query": ');
    form.set('map', '{}');
    const broken = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'x-graphql-yoga-csrf': '1' }, body: form });
    expect(broken.status).toBe(400);
    expect((await broken.json()).errors).toEqual([{ message: expect.stringMatching(/Invalid JSON in the 'operations' multipart field/), extensions: { code: 'INVALID_INPUT' } }]);

    const nul = new FormData();
    nul.set('operations', JSON.stringify({ query: 'mutation($i: BuildImageInput!) { buildImage(input: $i) { id } }', variables: { i: { imageName: 'app', dockerfile: NUL, files: [null] } } }));
    nul.set('map', JSON.stringify({ 0: ['variables.i.files.0'] }));
    nul.set('0', new Blob(['hello']), 'greeting.txt');
    const response = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'x-graphql-yoga-csrf': '1', cookie: alice.client.cookieHeader! }, body: nul });
    expect(response.status).toBe(400);
    expect((await response.json()).errors).toEqual([expect.objectContaining({ extensions: { code: 'INVALID_INPUT', field: 'input.dockerfile' } })]);
  });
});

describe('subscriptions refused over SSE', () => {
  it("answer with the error's status: 404 for a missing or another user's object, 401 without a credential", async () => {
    const bob = await loggedInUser(server.graphqlUrl, 'bad-bob');
    const bobs = (await bob.client.request(CreatePipelineDocument, { name: 'private' })).data!.createPipeline.id;
    const cases: [string, string | undefined, number, string][] = [
      ['subscription { jobUpdated(jobId: "999999") { id } }', alice.client.cookieHeader, 404, 'NOT_FOUND'],
      [`subscription { pipelineUpdated(pipelineId: "${bobs}") { id } }`, alice.client.cookieHeader, 404, 'NOT_FOUND'],
      ['subscription { buildUpdated(buildId: "1") { id } }', undefined, 401, 'UNAUTHENTICATED'],
    ];
    for (const [query, cookie, status, code] of cases) {
      const response = await sse({ query }, cookie);
      expect(response.status, query).toBe(status);
      expect(response.events).toEqual([{ errors: [expect.objectContaining({ extensions: { code } })] }]);
    }
    // A subscription that is accepted still streams with 200.
    const ok = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', cookie: bob.client.cookieHeader! },
      body: JSON.stringify({ query: `subscription { pipelineUpdated(pipelineId: "${bobs}") { id state } }` }),
    });
    expect(ok.status).toBe(200);
    await ok.body!.cancel();
  });
});

describe('REST bodies, query strings and paths', () => {
  async function kabuto(path: string, init: RequestInit = {}, cookie?: string) {
    const response = await fetch(`${server.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
    return { status: response.status, body: (await response.json()) as Json };
  }

  it('Kabuto: 400 {"message"} naming the field, for form, JSON, multipart, query string and path', async () => {
    const login = uniqueLogin('bad-k');
    expect(await kabuto('/register', { method: 'POST', body: new URLSearchParams({ login, password: PASSWORD, email: `${login}${NUL}@example.test` }) })).toEqual({
      status: 400,
      body: { message: 'email holds a NUL character.' },
    });
    const cookie = alice.client.cookieHeader!;
    const json = { method: 'POST', headers: { 'content-type': 'application/json' } };
    expect(await kabuto('/pipeline', { ...json, body: JSON.stringify({ name: SURROGATE }) }, cookie)).toEqual({
      status: 400,
      body: { message: expect.stringMatching(/^name holds a lone UTF-16 surrogate/) },
    });
    expect(await kabuto('/pipeline', { method: 'POST', body: new URLSearchParams({ name: NUL }) }, cookie)).toEqual({ status: 400, body: { message: 'name holds a NUL character.' } });
    const deep = `{"name": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(await kabuto('/pipeline', { ...json, body: deep }, cookie)).toEqual({ status: 400, body: { message: expect.stringMatching(/^name(\[0\])+ is nested more than 64 levels deep\.$/) } });
    const form = new FormData();
    form.set('name', 'app');
    form.set('dockerfile', `FROM busybox\n${NUL}`);
    expect(await kabuto('/image', { method: 'POST', body: form }, cookie)).toEqual({ status: 400, body: { message: 'dockerfile holds a NUL character.' } });
    const file = new FormData();
    file.set('name', 'app');
    file.set('dockerfile', new Blob([`FROM busybox\n${NUL}`]), 'Dockerfile');
    expect(await kabuto('/image', { method: 'POST', body: file }, cookie)).toEqual({ status: 400, body: { message: 'dockerfile holds a NUL character.' } });
    expect(await kabuto('/pipeline?name=a%00b', { method: 'POST' }, cookie)).toEqual({ status: 400, body: { message: 'name holds a NUL character.' } });
    expect(await kabuto(`/register/confirm/${login}%00/token`)).toEqual({ status: 400, body: { message: 'path[0] holds a NUL character.' } });
    expect(await kabuto('/pipeline', { method: 'POST', body: new URLSearchParams({ name: 'x'.repeat(300 * 1024) }) }, cookie)).toEqual({
      status: 400,
      body: { message: 'name is longer than 262144 characters.' },
    });
  });

  it('boatyard: 400 {"Error"} for JSON and the multipart manifest', async () => {
    const headers = { authorization: `Bearer ${aliceToken}` };
    const post = async (body: BodyInit, extra: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/api/v1/build`, { method: 'POST', headers: { ...headers, ...extra }, body });
      return { status: response.status, body: (await response.json()) as Json };
    };
    expect(await post(JSON.stringify({ image_name: 'user/image', dockerfile: `FROM busybox\n${NUL}` }), { 'content-type': 'application/json' })).toEqual({
      status: 400,
      body: { Error: 'dockerfile holds a NUL character.' },
    });
    const form = new FormData();
    form.set('TarFile', new Blob(['not a tarball']), 'context.tar');
    form.set('Json', new Blob([JSON.stringify({ image_name: 'user/image', tar_url: `http://127.0.0.1:9/${SURROGATE}.tar` })]), 'manifest.json');
    expect(await post(form)).toEqual({ status: 400, body: { Error: expect.stringMatching(/^tar_url holds a lone UTF-16 surrogate/) } });
  });
});

describe('boatyard repository names', () => {
  const post = async (names: Record<string, string>) => {
    const response = await fetch(`${server.url}/api/v1/build`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image_name: 'user/hello', github_tag: 'v1.0', ...names }),
    });
    return { status: response.status, body: (await response.json()) as Json };
  };

  it('refuses names that are not plain names: "..", "/", "%2f" in any encoding, and others', async () => {
    const bad: Record<string, string>[] = [
      { github_username: '..', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: '..' },
      { github_username: '.', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: 'a..b' },
      { github_username: 'other/user', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: '../../../elsewhere/repo' },
      { github_username: '%2e%2e', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: '..%2f..%2fx' },
      { github_username: 'user', github_reponame: 'a%2Fb' },
      { github_username: 'user', github_reponame: 'a%252fb' },
      { github_username: 'a\\b', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: 'repo?x=1' },
      { github_username: 'user', github_reponame: 'repo#x' },
      { github_username: '-upload-pack=x', github_reponame: 'repo' },
      { github_username: 'user', github_reponame: 'r'.repeat(101) },
      { github_username: 'us er', github_reponame: 'repo' },
    ];
    for (const names of bad) {
      const answer = await post(names);
      expect(answer.status, JSON.stringify(names)).toBe(400);
      expect(answer.body).toEqual({ Error: expect.stringMatching(/^github_(username|reponame) must be 1 to 100 letters/) });
    }
  });

  it('clones plain names from under BOATYARD_GIT_BASE_URL', async () => {
    for (const [user, repo] of [['tutumcloud', 'docker-hello-world'], ['some_user', '.github'], ['u', 'repo.git']]) {
      const answer = await post({ github_username: user!, github_reponame: repo! });
      expect(answer.status).toBe(200);
      const { data } = await alice.client.raw<Json>({ query: 'query($id: ID!) { build(id: $id) { source { kind url ref } } }', variables: { id: answer.body.JobIdentifier } });
      expect(data.build.source).toEqual({ kind: 'GIT', url: `${GIT_BASE}/${user}/${repo}.git`, ref: 'v1.0' });
    }
  });
});

describe('WebSocket messages over the cap', () => {
  it('close the socket with 1009 and log nothing; the server goes on', async () => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', { headers: { cookie: alice.client.cookieHeader! } });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { padding: 'x'.repeat(100 * 1024) } }));
    const [code] = await new Promise<[number, string]>((resolve) => socket.once('close', (c, reason) => resolve([c, String(reason)])));
    expect(code).toBe(1009);

    const { client } = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader });
    for await (const result of client.iterate({ query: '{ me { login } }' })) expect(result).toEqual({ data: { me: { login: alice.login } } });
    await client.dispose();
  });
});

/** A GraphQL request over SSE (yoga's POST with Accept: text/event-stream): its status and the data of its `next` events. */
async function sse(body: unknown, cookie?: string): Promise<{ status: number; events: Json[] }> {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  const events = [...text.matchAll(/^event: next\ndata: (.*)$/gm)].map((match) => JSON.parse(match[1]!) as Json);
  return { status: response.status, events };
}
