// The service as a newcomer runs it: `node src/main.ts` (what `npm start` runs) on embedded defaults,
// one-line failures for bad configuration, and a SIGTERM that drains in-flight requests and exits 0.
import { request } from 'node:http';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfirmAccountDocument,
  DeleteImageDocument,
  DeletePipelineDocument,
  JobLogChunksDocument,
  LoginDocument,
  MeDocument,
  RegisterDocument,
  SubmitPipelineDocument,
} from '../generated/graphql.ts';
import { buildLog, startBuild, waitForBuild } from '../support/builds.ts';
import { addJob, createPipeline, jobLog, waitForJob } from '../support/jobs.ts';
import { connectWs, drain, subscribe } from '../support/ws-client.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { PASSWORD } from '../support/accounts.ts';
import { runService as run } from '../support/process.ts';

describe('npm start on embedded defaults', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dockyard-boot-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('boots on PGlite with in-process events, says where GraphiQL is, and lets a user log in', async () => {
    const service = run({ DATA_DIR: dataDir });
    const url = await service.ready;
    expect(service.stdout()).toMatch(/GraphiQL at http:\/\/127\.0\.0\.1:\d+\/graphql/);
    expect(existsSync(path.join(dataDir, 'pglite'))).toBe(true);

    const ready = await (await fetch(`${url}/readyz`)).json();
    expect(ready.checks.database).toEqual({ ok: true, detail: 'pglite' });
    expect(ready.checks.redis).toEqual({ ok: true, detail: 'not configured: in-process pub/sub' });

    const client = new GraphqlClient(`${url}/graphql`);
    const registered = await client.request(RegisterDocument, { login: 'me', password: PASSWORD, email: 'test@test.com' });
    await client.request(ConfirmAccountDocument, { login: 'me', token: registered.data!.register.confirmationToken });
    expect((await client.request(LoginDocument, { login: 'me', password: PASSWORD })).errors).toBeUndefined();
    expect((await client.request(MeDocument)).data!.me).toMatchObject({ login: 'me', email: 'test@test.com', confirmed: true });

    // SIGTERM while a request is in flight: the request still completes, then the process exits 0.
    const port = new URL(url).port;
    const body = JSON.stringify({ query: '{ __typename }' });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        service.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 100);
    });
    expect(await response).toEqual({ status: 200, text: '{"data":{"__typename":"Query"}}' });
    const { code } = await service.exited;
    expect(code).toBe(0);
    expect(service.stdout()).toContain('SIGTERM received, draining');
  });

  it('builds an image and runs a job on PGlite, its log stored, paged and followed live', async () => {
    const service = run({ DATA_DIR: dataDir });
    const url = await service.ready;
    const client = new GraphqlClient(`${url}/graphql`);
    await client.request(LoginDocument, { login: 'me', password: PASSWORD });
    const build = await waitForBuild(client, (await startBuild(client, { imageName: 'embedded', dockerfile: 'FROM busybox\nRUN echo built\n' })).id);
    expect(build.state).toBe('SUCCEEDED');
    expect((await buildLog(client, build.id)).map((l) => l.text)).toContain('built');
    const pipelineId = await createPipeline(client, 'embedded');
    try {
      const job = await addJob(client, { pipelineId, imageId: build.image.id, commandLine: 'sh -c "seq 1 3000; echo done >&2"' });
      const ws = connectWs(url.replace('http', 'ws') + '/graphql', { cookie: client.cookieHeader }).client;
      const live = subscribe(ws, JobLogChunksDocument, { jobId: job.id });
      await client.request(SubmitPipelineDocument, { id: pipelineId });
      expect((await waitForJob(client, job.id)).state).toBe('SUCCEEDED');
      const expected = [...Array.from({ length: 3000 }, (_, i) => String(i + 1)), 'done'];
      expect((await jobLog(client, job.id)).map((l) => l.text).sort()).toEqual([...expected].sort());
      const chunks = await drain(live);
      expect(chunks.map((c) => c.text).join('').split('\n').slice(0, -1).sort()).toEqual([...expected].sort());
      expect(chunks.at(-1)!.lastSeq).toBe(3001);
      await ws.dispose();
    } finally {
      // Jobs keep their image: the pipeline goes first, then the image (and its engine images).
      expect((await client.request(DeletePipelineDocument, { id: pipelineId })).errors).toBeUndefined();
      expect((await client.request(DeleteImageDocument, { id: build.image.id })).errors).toBeUndefined();
      service.child.kill('SIGTERM');
      expect((await service.exited).code).toBe(0);
    }
  });

  it('keeps its data across restarts', async () => {
    const service = run({ DATA_DIR: dataDir });
    const url = await service.ready;
    const client = new GraphqlClient(`${url}/graphql`);
    expect((await client.request(LoginDocument, { login: 'me', password: PASSWORD })).data!.login.user.login).toBe('me');
    service.child.kill('SIGTERM');
    expect((await service.exited).code).toBe(0);
  });
});

describe('bad configuration fails at start with one clear line', () => {
  it.each([
    [{ DATABASE_URL: 'not-a-url' }, /^dockyard: configuration error: DATABASE_URL is not a valid URL \(got "not-a-url"\); expected postgres:\/\/…$/],
    [{ DATABASE_URL: 'postgres://root:secret@127.0.0.1:1/none' }, /^dockyard: cannot start: cannot open the database at postgres:\/\/root:\*\*\*@127\.0\.0\.1:1\/none: connect ECONNREFUSED 127\.0\.0\.1:1$/],
    [{ REDIS_URL: 'redis://127.0.0.1:1' }, /^dockyard: cannot start: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1$/],
    [{ PORT: 'http' }, /^dockyard: configuration error: PORT must be a whole number \(got "http"\)$/],
  ])('%j', async (env, line) => {
    const { code, stderr } = await run({ DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-bad-')), ...env }).exited;
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr.trim()).toMatch(line);
  });
});
