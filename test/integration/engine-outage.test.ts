// When the engine goes away (issue 11, item 4), on a private engine the test stops, kills and restarts:
// work about to start waits for it (up to ENGINE_WAIT_SECONDS) instead of failing at once, past that it
// ends ERRORED saying so; and the job containers and volumes an instance leaves behind are removed at its
// next start and, without a restart, by the periodic clean-up, while those of running jobs stay.
// Each Dockyard here runs on a database of this file's own with in-process events: nothing else in a
// test run can claim its work (whose images exist on the private engine only) or cancel its job ids.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { CancelJobDocument, JobDocument, SubmitPipelineDocument } from '../generated/graphql.ts';
import { openDatabase } from '../../src/db/orm.ts';
import { DockerJobRunner } from '../../src/runner/docker/docker-job-runner.ts';
import { jobContainerOptions, jobLabels, jobNames, LABEL } from '../../src/runner/docker/job-template.ts';
import type { JobContainerSpec } from '../../src/runner/jobs.ts';
import { loggedInUser } from '../support/accounts.ts';
import { buildLog, startBuild, waitForBuild } from '../support/builds.ts';
import { TEST_DATABASE_URL } from '../support/env.ts';
import type { GraphqlClient } from '../support/graphql-client.ts';
import { addJob, createPipeline, jobLog, waitForJob, waitForPipeline } from '../support/jobs.ts';
import { startPrivateEngine } from '../support/private-engine.ts';
import { startTestServer } from '../support/server.ts';

const engine = await startPrivateEngine();
afterAll(() => engine.destroy(), 120_000);
const databaseUrl = await privateDatabase();

/** A database of this file's own on the test server, with every migration applied; dropped at the end. */
async function privateDatabase(): Promise<string> {
  const name = `dockyard_outage_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(sql).finally(() => client.end());
  };
  await admin(`create database "${name}"`);
  afterAll(() => admin(`drop database if exists "${name}" with (force)`));
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const orm = await openDatabase({ databaseUrl: url.href, dataDir: '/nonexistent' });
  await orm.close();
  return url.href;
}

function settings(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    DOCKER_HOST: engine.host,
    DATABASE_URL: databaseUrl,
    REDIS_URL: undefined,
    BUILD_CONCURRENCY: '1',
    JOB_CONCURRENCY: '2',
    JOB_STOP_GRACE_SECONDS: '1',
    JOB_MEMORY_MB: '64',
    BUILD_BASE_IMAGES: 'busybox:latest',
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-outage-')),
    INSTANCE_ID: `outage-${randomUUID()}`,
    ...extra,
  };
}

/** An image to run jobs in, built through Dockyard on the private engine. */
async function workerImage(client: GraphqlClient): Promise<string> {
  const build = await waitForBuild(client, (await startBuild(client, { imageName: 'worker', dockerfile: 'FROM busybox\nCMD ["sh"]\n' })).id);
  expect(build.state).toBe('SUCCEEDED');
  return build.image.id;
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const logText = async (client: GraphqlClient, jobId: string) => (await jobLog(client, jobId)).map((line) => line.text);
const buildText = async (client: GraphqlClient, buildId: string) => (await buildLog(client, buildId)).map((line) => line.text);
const job = async (client: GraphqlClient, id: string) => (await client.request(JobDocument, { id })).data!.job;

/** This instance's job containers and volumes on the private engine (`docker ps -a` / `docker volume ls` by label). */
async function leftovers(instanceId: string): Promise<{ containers: string[]; volumes: string[] }> {
  const label = { label: [`${LABEL.instance}=${instanceId}`] };
  const containers = await engine.docker.listContainers({ all: true, filters: label });
  const { Volumes } = await engine.docker.listVolumes({ filters: label });
  return { containers: containers.map((c) => c.Names[0]!.replace(/^\//, '')), volumes: (Volumes ?? []).map((v) => v.Name).sort() };
}

/** What a start cut short by the engine going away leaves: the job's named volumes, made before its container. */
async function volumesOfACutShortStart(jobId: number, instanceId: string): Promise<string[]> {
  const names = jobNames(jobId, randomBytes(4).toString('hex')).volumes;
  for (const name of [names.inbox, names.outbox]) await engine.docker.createVolume({ Name: name, Driver: 'local', Labels: jobLabels({ jobId, ownerId: 1, instanceId }) });
  return [names.inbox, names.outbox];
}

function spec(jobId: number, instanceId: string, image: string, command: string[]): JobContainerSpec {
  return {
    jobId, ownerId: 1, instanceId, image, command, env: {}, inbox: [],
    limits: { memoryBytes: 64 * 2 ** 20, cpus: 1, pidsLimit: 64, tmpBytes: 2 ** 20, stopGraceSeconds: 1 },
  };
}

describe('an engine that does not answer', () => {
  it('is waited for: a pipeline and a build submitted while it is down run once it is back, and a cancel ends the wait', async () => {
    const server = await startTestServer(settings({ ENGINE_WAIT_SECONDS: '60' }));
    const { client } = await loggedInUser(server.graphqlUrl);
    const imageId = await workerImage(client);

    await engine.stop();
    const down = Date.now();
    const pipelineId = await createPipeline(client, 'while the engine is away');
    const first = await addJob(client, { pipelineId, imageId, commandLine: 'sh -c "echo first && echo 1 > /outbox/one.txt"' });
    const second = await addJob(client, { pipelineId, imageId, commandLine: 'echo second' });
    expect((await client.request(SubmitPipelineDocument, { id: pipelineId })).errors).toBeUndefined();
    const build = await startBuild(client, { imageName: 'rebuilt', dockerfile: 'FROM busybox\nRUN echo built > /built\n' });

    // Both say in their logs that they wait, and wait: not ERRORED at once as before.
    await until('the job to wait', () => logText(client, first.id), (lines) => lines.some((line) => line.startsWith('The engine does not answer')));
    await until('the build to wait', () => buildText(client, build.id), (lines) => lines.some((line) => line.startsWith('The engine does not answer')));
    const waitingLine = (await logText(client, first.id)).find((line) => line.startsWith('The engine does not answer'))!;
    expect(waitingLine).toMatch(/^The engine does not answer \(connect (ENOENT|ECONNREFUSED) .*\); waiting up to 60 s for it\.$/);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, down + 4000 - Date.now())));
    expect((await job(client, first.id)).state).toBe('RUNNING');
    expect((await waitForBuild(client, build.id, ['RUNNING'])).state).toBe('RUNNING');

    // A job canceled while it waits ends CANCELED at once, without waiting for the engine.
    const otherPipeline = await createPipeline(client, 'canceled while waiting');
    const canceled = await addJob(client, { pipelineId: otherPipeline, imageId, commandLine: 'echo never' });
    await client.request(SubmitPipelineDocument, { id: otherPipeline });
    await until('the second job to wait', () => logText(client, canceled.id), (lines) => lines.some((line) => line.startsWith('The engine does not answer')));
    const cancelAt = Date.now();
    expect((await client.request(CancelJobDocument, { id: canceled.id })).errors).toBeUndefined();
    const afterCancel = await waitForJob(client, canceled.id);
    const cancelMs = Date.now() - cancelAt;
    expect(afterCancel).toMatchObject({ state: 'CANCELED', error: 'Canceled.', exitCode: null });
    expect(cancelMs).toBeLessThan(3000);
    expect((await logText(client, canceled.id)).at(-1)).toBe('CANCELED: Canceled.');

    await engine.start();
    const back = Date.now();
    const pipeline = await waitForPipeline(client, pipelineId);
    const done = await waitForJob(client, first.id);
    expect(done).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, error: null });
    expect(done.results.map((r) => r.name)).toEqual(['one.txt']);
    expect((await waitForJob(client, second.id)).state).toBe('SUCCEEDED');
    expect(pipeline.state).toBe('SUCCEEDED');
    const log = await logText(client, first.id);
    expect(log).toContain('first');
    const answered = log.find((line) => line.startsWith('The engine answers again'))!;
    expect(answered).toMatch(/^The engine answers again \(waited \d+\.\d s\)\.$/);
    const built = await waitForBuild(client, build.id);
    expect(built.state).toBe('SUCCEEDED');
    expect(await buildText(client, build.id)).toContainEqual(expect.stringMatching(/^The engine answers again/));
    console.log(
      `engine down ${((back - down) / 1000).toFixed(1)} s; job: "${answered}", SUCCEEDED ${((new Date(done.finishedAt!).getTime() - back) / 1000).toFixed(2)} s after the engine answered; ` +
        `build SUCCEEDED ${((new Date(built.finishedAt!).getTime() - back) / 1000).toFixed(2)} s after; a waiting job canceled in ${cancelMs} ms`,
    );
  }, 180_000);

  it('past ENGINE_WAIT_SECONDS ends the job and the build ERRORED, saying so, with a closing log line', async () => {
    const server = await startTestServer(settings({ ENGINE_WAIT_SECONDS: '3' }));
    const { client } = await loggedInUser(server.graphqlUrl);
    const imageId = await workerImage(client);

    await engine.stop();
    try {
      const pipelineId = await createPipeline(client, 'the engine does not come back');
      const first = await addJob(client, { pipelineId, imageId, commandLine: 'echo never' });
      const second = await addJob(client, { pipelineId, imageId, commandLine: 'echo never either' });
      await client.request(SubmitPipelineDocument, { id: pipelineId });
      const build = await startBuild(client, { imageName: 'never', dockerfile: 'FROM busybox\n' });

      const ended = await waitForJob(client, first.id);
      const message = /^The engine did not answer for 3 s \(ENGINE_WAIT_SECONDS\): connect (ENOENT|ECONNREFUSED) \/run\/dky-[0-9a-f]+\.sock$/;
      expect(ended).toMatchObject({ state: 'ERRORED', exitCode: null });
      expect(ended.error).toMatch(message);
      const waitedMs = new Date(ended.finishedAt!).getTime() - new Date(ended.startedAt!).getTime();
      expect(waitedMs).toBeGreaterThanOrEqual(3000);
      expect(waitedMs).toBeLessThan(10_000);
      const log = await logText(client, first.id);
      expect(log[0]).toMatch(/^The engine does not answer .*; waiting up to 3 s for it\.$/);
      expect(log.at(-1)).toBe(`ERRORED: ${ended.error}`);
      // The pipeline stops there (it does not continue on failure).
      expect((await waitForPipeline(client, pipelineId)).state).not.toBe('RUNNING');
      expect((await job(client, second.id)).state).toBe('SKIPPED');

      const builtNot = await waitForBuild(client, build.id);
      expect(builtNot.state).toBe('ERRORED');
      expect(builtNot.error).toMatch(message);
      expect((await buildText(client, build.id)).at(-1)).toBe(`ERRORED: ${builtNot.error}`);
      console.log(`ENGINE_WAIT_SECONDS=3: the job ended ERRORED after ${(waitedMs / 1000).toFixed(2)} s: "${ended.error}"`);
    } finally {
      await engine.start();
    }
  }, 120_000);
});

describe('what an instance leaves on the engine', () => {
  it('an engine killed mid-job: once the engine and Dockyard are back, none of its job containers or volumes remain', async () => {
    const env = settings({ JOB_CLEANUP_INTERVAL_SECONDS: '0' }); // only the start-up clean-up
    const instanceId = env.INSTANCE_ID!;
    const first = await startTestServer(env);
    const { client } = await loggedInUser(first.graphqlUrl);
    const imageId = await workerImage(client);

    // An attachment: the job gets named /inbox and /outbox volumes, filled by a loader.
    const pipelineId = await createPipeline(client, 'the engine is killed');
    const running = await addJob(client, { pipelineId, imageId, commandLine: 'sh -c "echo started && sleep 120"', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'in.txt', content: 'input\n' },
    ]);
    await client.request(SubmitPipelineDocument, { id: pipelineId });
    await until('the job to start', () => logText(client, running.id), (lines) => lines.includes('started'));
    expect((await leftovers(instanceId)).volumes).toHaveLength(2);

    await engine.kill();
    const killedAt = Date.now();
    const ended = await waitForJob(client, running.id);
    expect(ended.state).toBe('ERRORED');
    const endedMs = Date.now() - killedAt;
    await first.close();
    await engine.start();

    // Left: the job's container (exited) and its two volumes; added: what a start cut short leaves
    // (two volumes, no container), and an anonymous outbox whose container was removed by hand.
    const jobId = Number(running.id);
    const cutShort = await volumesOfACutShortStart(jobId, instanceId);
    const handMade = await new DockerJobRunner(engine.host).start(spec(jobId, instanceId, 'busybox:latest', ['true']), () => {});
    await handMade.exited;
    await engine.docker.getContainer(handMade.containerId).remove({ force: true, v: false });
    // Not this instance's, or not Dockyard's: they stay.
    const [otherInstance] = await volumesOfACutShortStart(jobId, `${instanceId}-other`);
    const unlabelled = `dockyard-job-${jobId}-${randomBytes(4).toString('hex')}-outbox`;
    await engine.docker.createVolume({ Name: unlabelled });

    const before = await leftovers(instanceId);
    expect(before.containers).toHaveLength(1);
    expect(before.volumes).toHaveLength(5);
    expect(before.volumes).toEqual(expect.arrayContaining(cutShort));

    const second = await startTestServer(env);
    expect(await leftovers(instanceId)).toEqual({ containers: [], volumes: [] });
    const remaining = ((await engine.docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    expect(remaining).toEqual(expect.arrayContaining([otherInstance, unlabelled]));
    console.log(`the engine killed mid-job: the job ERRORED ${endedMs} ms later; ${before.containers.length} container(s) and ${before.volumes.length} volume(s) of the instance before its restart, none after`);

    // The job ended ERRORED when the engine went away (the restart does not change that), saying so last.
    client.url = second.graphqlUrl; // the session is in the database: it holds on the new server
    expect((await job(client, running.id)).state).toBe('ERRORED');
    expect((await logText(client, running.id)).at(-1)).toMatch(/^ERRORED: The engine failed: the connection to the engine broke while the job ran \(.+\)$/);
    for (const name of [otherInstance!, unlabelled]) await engine.docker.getVolume(name).remove();
  }, 180_000);

  it('the periodic clean-up removes them without a restart, and leaves those of the jobs running here', async () => {
    const env = settings({ JOB_CLEANUP_INTERVAL_SECONDS: '1' });
    const instanceId = env.INSTANCE_ID!;
    const server = await startTestServer(env);
    const { client } = await loggedInUser(server.graphqlUrl);
    const imageId = await workerImage(client);

    // A job that runs through several clean-ups and needs its volumes to the end.
    const pipelineId = await createPipeline(client, 'runs through the clean-ups');
    const running = await addJob(client, { pipelineId, imageId, commandLine: 'sh -c "echo started && sleep 10 && cp /inbox/in.txt /outbox/out.txt"', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'in.txt', content: 'input\n' },
    ]);
    await client.request(SubmitPipelineDocument, { id: pipelineId });
    await until('the job to start', () => logText(client, running.id), (lines) => lines.includes('started'));
    const own = await leftovers(instanceId);
    expect(own.volumes).toHaveLength(2);

    // Left by an earlier run of this instance: a job container with its anonymous outbox, one with a
    // named outbox, and the volumes of a start cut short. (Each made by one engine call: a clean-up
    // cannot come between the steps of a start, which a real start would not let it do either.)
    for (const [jobId, named] of [[900_000_001, false], [900_000_002, true]] as const) {
      const names = jobNames(jobId, randomBytes(4).toString('hex'));
      const options = jobContainerOptions(spec(jobId, instanceId, 'busybox:latest', ['sleep', '60']), { name: names.container, volumes: { inbox: null, outbox: named ? names.volumes.outbox : null }, user: null });
      await engine.docker.createContainer(options);
    }
    const cutShort = await volumesOfACutShortStart(900_000_003, instanceId);
    // Another instance's container on the same engine: not this one's to remove.
    const other = await new DockerJobRunner(engine.host).start(spec(900_000_004, `${instanceId}-other`, 'busybox:latest', ['sleep', '60']), () => {});
    other.exited.catch(() => {});
    const leftAt = Date.now();
    const before = await leftovers(instanceId);
    expect(before.containers.filter((name) => !name.endsWith('-loader'))).toHaveLength(3); // the running job's and the two left
    expect(before.volumes).toHaveLength(2 + 2 + 2);
    expect(before.volumes).toEqual(expect.arrayContaining(cutShort));

    const after = await until('the leftovers to go', () => leftovers(instanceId), (now) => now.containers.length === 1 && now.volumes.length === 2, 20_000);
    const goneMs = Date.now() - leftAt;
    expect(after.volumes).toEqual(own.volumes);
    expect(after.containers[0]).toMatch(new RegExp(`^dockyard-job-${running.id}-[0-9a-f]{8}$`));

    const done = await waitForJob(client, running.id);
    expect(done).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(done.results.map((r) => r.name)).toEqual(['out.txt']);
    await until('the finished job to be removed', () => leftovers(instanceId), (now) => now.containers.length === 0 && now.volumes.length === 0);
    expect((await engine.docker.getContainer(other.containerId).inspect()).State.Running).toBe(true);
    await engine.docker.getContainer(other.containerId).remove({ force: true, v: true });
    console.log(`periodic clean-up (every 1 s): 2 containers and ${before.volumes.length - 2} volumes left by an earlier run gone after ${goneMs} ms; the running job's 2 volumes kept, the job SUCCEEDED`);
  }, 180_000);
});
