// Pipeline semantics with the fake engine and job runner (test/support/fake-engine.ts): order, skipping,
// continuing on failure, cancelling, timeouts, results and the concurrency limit, in milliseconds and
// without Docker. The service is the real one on its embedded defaults (PGlite, in-process events), so
// nothing here can claim the shared test database's work. The real-engine tests stay beside these.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CancelPipelineDocument, SubmitPipelineDocument } from '../generated/graphql.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startBuild, waitForBuild } from '../support/builds.ts';
import { FakeEngine, FakeJobRunner } from '../support/fake-engine.ts';
import { addJob, createPipeline, jobLog, waitForJob, waitForPipeline } from '../support/jobs.ts';
import { startTestServer } from '../support/server.ts';

const engine = new FakeEngine();
const runner = new FakeJobRunner();
const server = await startTestServer(
  { DATABASE_URL: undefined, REDIS_URL: undefined, DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-fast-')), JOB_CONCURRENCY: '2', BUILD_CONCURRENCY: '1' },
  { engine, jobRunner: runner },
);
const user = await loggedInUser(server.graphqlUrl, 'fast');
const image = (await waitForBuild(user.client, (await startBuild(user.client, { imageName: 'fake', dockerfile: 'FROM busybox\n' })).id)).image;

async function pipelineOf(commands: string[], continueOnFailure = false) {
  const id = await createPipeline(user.client, `p-${Math.random()}`, continueOnFailure);
  const jobs = [];
  for (const commandLine of commands) jobs.push(await addJob(user.client, { pipelineId: id, imageId: image.id, commandLine }));
  return { id, jobs };
}

describe('pipelines (fake engine)', () => {
  it('built the image through the real build path on the fake engine', () => {
    expect(image.dockerImageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(engine.builds).toBe(1);
  });

  it('runs jobs one after another in their order, with their output and results', async () => {
    const { id, jobs } = await pipelineOf(['out first sleep 30', 'out second file result.txt=hello', 'err third']);
    await user.client.request(SubmitPipelineDocument, { id });
    const pipeline = await waitForPipeline(user.client, id, 10_000);
    expect(pipeline.state).toBe('SUCCEEDED');
    expect(pipeline.jobs.map((j) => j.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(runner.started.filter((jobId) => jobs.some((j) => Number(j.id) === jobId))).toEqual(jobs.map((j) => Number(j.id)));
    expect((await jobLog(user.client, jobs[0]!.id)).map((l) => l.text)).toEqual(['first']);
    expect((await jobLog(user.client, jobs[2]!.id)).map((l) => [l.stream, l.text])).toEqual([['stderr', 'third']]);
    expect(pipeline.jobs[1]!.results).toEqual([{ name: 'result.txt', size: 5, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
  });

  it('skips the jobs after a failure, unless the pipeline continues on failure', async () => {
    const stopping = await pipelineOf(['exit 3', 'out never']);
    await user.client.request(SubmitPipelineDocument, { id: stopping.id });
    const stopped = await waitForPipeline(user.client, stopping.id, 10_000);
    expect([stopped.state, stopped.jobs.map((j) => [j.state, j.exitCode])]).toEqual(['FAILED', [['FAILED', 3], ['SKIPPED', null]]]);

    const going = await pipelineOf(['exit 3', 'out still'], true);
    await user.client.request(SubmitPipelineDocument, { id: going.id });
    const went = await waitForPipeline(user.client, going.id, 10_000);
    expect([went.state, went.jobs.map((j) => j.state)]).toEqual(['FAILED', ['FAILED', 'SUCCEEDED']]);
  });

  it('cancels the running job and the waiting ones', async () => {
    const { id, jobs } = await pipelineOf(['sleep 60000', 'out never']);
    await user.client.request(SubmitPipelineDocument, { id });
    await waitForJob(user.client, jobs[0]!.id, ['RUNNING'], 10_000);
    const started = Date.now();
    await user.client.request(CancelPipelineDocument, { id });
    const pipeline = await waitForPipeline(user.client, id, 10_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect([pipeline.state, pipeline.jobs.map((j) => j.state)]).toEqual(['CANCELED', ['CANCELED', 'CANCELED']]);
  });

  it('ends a job that outlives its timeout TIMED_OUT', async () => {
    const id = await createPipeline(user.client, 'timeout');
    const job = await addJob(user.client, { pipelineId: id, imageId: image.id, commandLine: 'sleep 60000', timeoutSeconds: 1 });
    await user.client.request(SubmitPipelineDocument, { id });
    expect((await waitForJob(user.client, job.id, undefined, 10_000)).state).toBe('TIMED_OUT');
  });

  it('runs at most JOB_CONCURRENCY jobs at once, however many pipelines wait', async () => {
    runner.maxRunning = runner.running;
    const pipelines = await Promise.all(Array.from({ length: 5 }, () => pipelineOf(['sleep 150'])));
    await Promise.all(pipelines.map(({ id }) => user.client.request(SubmitPipelineDocument, { id })));
    const ended = await Promise.all(pipelines.map(({ id }) => waitForPipeline(user.client, id, 20_000)));
    expect(ended.map((p) => p.state)).toEqual(Array(5).fill('SUCCEEDED'));
    expect(runner.maxRunning).toBe(2);
  });
});
