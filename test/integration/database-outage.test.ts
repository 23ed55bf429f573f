// A PostgreSQL outage under a running job (issue 11): Dockyard runs on a PostgreSQL cluster of this
// test's own, which is stopped after the job's first lines are stored and started again after the
// container has exited. Nothing read from the engine is lost, the job ends with its real outcome
// within seconds of the database's return, and the pipeline goes on.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { JobDocument, JobLogDocument, SubmitPipelineDocument } from '../generated/graphql.ts';
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
