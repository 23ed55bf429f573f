// A PostgreSQL outage under a running job (issue 11): Dockyard runs on a PostgreSQL cluster of this
// test's own, which is stopped after the job's first lines are stored and started again after the
// container has exited. Nothing read from the engine is lost, the job ends with its real outcome
// within seconds of the database's return, and the pipeline goes on.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CreateApiTokenDocument, JobDocument, JobLogDocument, JobUpdatedDocument, MeDocument, SubmitPipelineDocument } from '../generated/graphql.ts';
import { connectWs, subscribe } from '../support/ws-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startBuild, waitForBuild } from '../support/builds.ts';
import type { GraphqlClient } from '../support/graphql-client.ts';
import { addJob, createPipeline, waitForPipeline } from '../support/jobs.ts';
import { startPrivatePostgres } from '../support/private-postgres.ts';
import { startTestServer } from '../support/server.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const pg = await startPrivatePostgres();
afterAll(() => pg.remove());
const instanceId = `pg-outage-${Date.now()}`;
const server = await startTestServer({
  DATABASE_URL: pg.url,
  REDIS_URL: undefined, // in-process events: this database's ids are not the shared test database's
  INSTANCE_ID: instanceId,
  JOB_CONCURRENCY: '1',
  BUILD_CONCURRENCY: '1',
  DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-pg-outage-')),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls through the outage: requests that fail while the database is away are simply tried again. */
async function jobWhenFinished(client: GraphqlClient, id: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await client.request(JobDocument, { id }).catch(() => null);
    const job = result?.data?.job;
    if (job && !['QUEUED', 'RUNNING'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} is still ${job?.state ?? 'unreadable'}`);
    await sleep(100);
  }
}

async function storedLines(client: GraphqlClient, id: string) {
  const result = await client.request(JobLogDocument, { id, afterSeq: 0, first: 5000 });
  return result.data?.job.logLines ?? [];
}

describe('a PostgreSQL outage while a job runs', () => {
  it('stores every line and the result once the database returns, and ends the job SUCCEEDED within seconds', async () => {
    const user = await loggedInUser(server.graphqlUrl, 'outage');
    const image = await waitForBuild(user.client, (await startBuild(user.client, { imageName: 'outage', dockerfile: 'FROM busybox\n' })).id);
    const pipelineId = await createPipeline(user.client, 'through an outage');
    const job = await addJob(user.client, {
      pipelineId,
      imageId: image.image.id,
      commandLine: `sh -c 'for i in $(seq 1 100); do echo line $i; sleep 0.05; done; echo kept > /outbox/result.txt'`,
    });
    const after = await addJob(user.client, { pipelineId, imageId: image.image.id, commandLine: 'echo the next job ran' });
    await user.client.request(SubmitPipelineDocument, { id: pipelineId });
    while ((await storedLines(user.client, job.id)).length < 10) await sleep(20);

    await pg.stop();
    // The container finishes while the database is away.
    const filters = JSON.stringify({ label: [`io.dockyard.instance=${instanceId}`, `io.dockyard.job=${job.id}`] });
    for (let i = 0; ; i++) {
      const [container] = await docker.listContainers({ all: true, filters });
      if (!container || container.State === 'exited') break;
      if (i > 300) throw new Error('the job container did not exit');
      await sleep(50);
    }
    await sleep(3000);
    await pg.start();
    const back = Date.now();

    const ended = await jobWhenFinished(user.client, job.id, 60_000);
    const waited = Date.now() - back;
    console.info(`database outage: the job ended ${waited} ms after PostgreSQL returned`);
    expect(ended).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, error: null, logTruncated: false });
    expect(waited).toBeLessThan(10_000);
    const lines = await storedLines(user.client, job.id);
    expect(lines.map((line) => line.text)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i + 1}`));
    expect(lines.map((line) => line.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(ended.results).toEqual([{ name: 'result.txt', size: 5, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const pipeline = await waitForPipeline(user.client, pipelineId);
    expect(pipeline.jobs.map((j) => j.state)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect((await storedLines(user.client, after.id)).map((line) => line.text)).toEqual(['the next job ran']);
  }, 180_000);
});

describe('while PostgreSQL is down', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After on every surface, logs one line when it goes and one when it is back', async () => {
    const user = await loggedInUser(server.graphqlUrl, 'answers');
    // Fresh API tokens: never used before the outage, so no instance has them in its credential cache.
    const token = async () => (await user.client.request(CreateApiTokenDocument, { name: `t${Math.random()}` })).data!.createApiToken.token;
    const [forGraphql, forKabuto, forBoatyard, forWs] = [await token(), await token(), await token(), await token()];
    const lines: string[] = [];
    const traces: unknown[] = [];
    const record = (...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
      if (args.some((arg) => arg instanceof Error)) traces.push(args);
    };
    const spies = [vi.spyOn(console, 'error').mockImplementation(record), vi.spyOn(console, 'warn').mockImplementation(record)];
    try {
      await pg.stop();

      const graphql = await fetch(server.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${forGraphql}` },
        body: JSON.stringify({ query: '{ me { login } }' }),
      });
      expect(graphql.status).toBe(503);
      expect(graphql.headers.get('retry-after')).toBe('5');
      expect(((await graphql.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('SERVICE_UNAVAILABLE');

      const kabuto = await fetch(`${server.url}/image`, { headers: { authorization: `Bearer ${forKabuto}` } });
      expect([kabuto.status, kabuto.headers.get('retry-after'), await kabuto.json()]).toEqual([503, '5', { status: 503, message: expect.stringMatching(/unavailable/) }]);

      const boatyard = await fetch(`${server.url}/api/v1/1/status`, { headers: { authorization: `Bearer ${forBoatyard}` } });
      expect([boatyard.status, boatyard.headers.get('retry-after'), await boatyard.json()]).toEqual([503, '5', { Error: expect.stringMatching(/unavailable/) }]);

      const ws = connectWs(server.wsUrl, { connectionParams: { authorization: `Bearer ${forWs}` } });
      const refused = await subscribe(ws.client, JobUpdatedDocument, { jobId: '1' })
        .next(10_000)
        .catch((error: unknown) => ({ errors: (Array.isArray(error) ? error : [error]) as { extensions?: { code?: string } }[] }));
      expect((refused as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      await ws.client.dispose();

      await sleep(3000); // polls and probes go on failing meanwhile
      await pg.start();
      for (let i = 0; ; i++) {
        const result = await user.client.request(MeDocument).catch(() => null);
        if (result?.data?.me) break;
        if (i > 100) throw new Error('the service did not answer again');
        await sleep(100);
      }
      await sleep(2500); // the probe's next round
    } finally {
      spies.forEach((spy) => spy.mockRestore());
    }
    expect(traces).toEqual([]);
    const database = lines.filter((line) => line.startsWith('database:'));
    expect(database).toEqual([expect.stringMatching(/^database: failing \(/), 'database: working again']);
    // Besides it, only the workers' own one line per outage each (claims, renewals), and their line when back.
    expect(lines.length).toBeLessThanOrEqual(database.length + 8);
  }, 120_000);
});
