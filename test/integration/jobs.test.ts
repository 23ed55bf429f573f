// Pipelines and jobs end to end on the real Docker engine, PostgreSQL and Redis: Kabuto's flow
// (build, pipeline, job with attachments, submit, logs, results zip), every state, cancel, timeout,
// limits, live logs, ownership, and a restart in the middle of a running job.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  AddJobDocument,
  CancelJobDocument,
  CancelPipelineDocument,
  CreateApiTokenDocument,
  DeletePipelineDocument,
  JobDocument,
  JobLogChunksDocument,
  JobLogLinesDocument,
  JobUpdatedDocument,
  MoveJobDocument,
  PipelineDocument,
  PipelinesDocument,
  PipelineUpdatedDocument,
  RemoveJobDocument,
  SubmitPipelineDocument,
  UpdatePipelineDocument,
  UpdateJobDocument,
} from '../generated/graphql.ts';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { startBuild, waitForBuild } from '../support/builds.ts';
import { addJob, createPipeline, jobLog, waitForJob, waitForPipeline } from '../support/jobs.ts';
import { multipartRequest } from '../support/multipart.ts';
import { connectWs, drain, subscribe } from '../support/ws-client.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const settings = {
  BUILD_CONCURRENCY: '1',
  JOB_CONCURRENCY: '4',
  JOB_STOP_GRACE_SECONDS: '1',
  JOB_MEMORY_MB: '64',
  JOB_PIDS_LIMIT: '64',
  JOB_LOG_MAX_MB: '1',
  DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-jobs-')),
};
const server = await startTestServer(settings);
const alice = await loggedInUser(server.graphqlUrl, 'alice');
const bob = await loggedInUser(server.graphqlUrl, 'bob');
const image = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'worker', dockerfile: 'FROM busybox\nCMD ["sh"]\n' })).id);
expect(image.state).toBe('SUCCEEDED');
const imageId = image.image.id;

async function runOne(command: string, extra: Record<string, unknown> = {}) {
  const pipelineId = await createPipeline(alice.client, `one ${command.slice(0, 40)}`);
  const job = await addJob(alice.client, { pipelineId, imageId, commandLine: command, ...extra });
  await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
  return { pipelineId, job: await waitForJob(alice.client, job.id) };
}

describe("Kabuto's flow", () => {
  it('runs a job with two attachments, keeps its output and its /outbox as a zip', async () => {
    const pipelineId = await createPipeline(alice.client, 'my first pipeline');
    const command = 'sh -c "cat /inbox/file1 /inbox/file2 && mkdir -p /outbox/sub && wc -c /inbox/file2 > /outbox/sub/count.txt && echo done > /outbox/done.txt && echo to stderr >&2"';
    const job = await addJob(alice.client, { pipelineId, imageId, commandLine: command, attachments: [null, null] }, [
      { path: 'input.attachments.0', name: 'file1', content: 'first attachment\n' },
      { path: 'input.attachments.1', name: 'file2', content: 'second attachment\n' },
    ]);
    expect(job.state).toBe('READY');
    expect(job.command).toEqual(['sh', '-c', 'cat /inbox/file1 /inbox/file2 && mkdir -p /outbox/sub && wc -c /inbox/file2 > /outbox/sub/count.txt && echo done > /outbox/done.txt && echo to stderr >&2']);
    expect(job.attachments.map((a) => [a.name, a.size])).toEqual([['file1', 17], ['file2', 18]]);

    const submitted = await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    expect(submitted.data!.submitPipeline).toEqual([{ id: job.id, state: expect.stringMatching(/^(QUEUED|RUNNING)$/) }]);
    const done = await waitForJob(alice.client, job.id);
    expect(done).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, error: null });
    expect(done.results.map((r) => [r.name, r.size])).toEqual([['done.txt', 5], ['sub/count.txt', 16]]);
    expect(new Date(done.finishedAt!).getTime()).toBeGreaterThanOrEqual(new Date(done.startedAt!).getTime());

    const log = await jobLog(alice.client, job.id);
    expect(log.map((l) => [l.stream, l.text])).toEqual(
      expect.arrayContaining([['stdout', 'first attachment'], ['stdout', 'second attachment'], ['stderr', 'to stderr']]),
    );
    expect(log.map((l) => l.seq)).toEqual(log.map((_, i) => i + 1));
    expect((await waitForPipeline(alice.client, pipelineId)).state).toBe('SUCCEEDED');

    // The zip, with the session cookie and with an API token.
    const zip = await fetch(`${server.url}${done.resultsUrl}`, { headers: { cookie: alice.client.cookieHeader! } });
    expect(zip.status).toBe(200);
    expect(zip.headers.get('content-type')).toBe('application/zip');
    expect(readZip(new Uint8Array(await zip.arrayBuffer()))).toEqual({ 'done.txt': 'done\n', 'sub/count.txt': '18 /inbox/file2\n' });
    const { token } = (await alice.client.request(CreateApiTokenDocument, { name: 'downloads' })).data!.createApiToken;
    const one = await fetch(`${server.url}/jobs/${job.id}/results/sub/count.txt`, { headers: { authorization: `Bearer ${token}` } });
    expect(await one.text()).toBe('18 /inbox/file2\n');

    // Nobody else, and nobody anonymous.
    expect((await fetch(`${server.url}${done.resultsUrl}`, { headers: { cookie: bob.client.cookieHeader! } })).status).toBe(404);
    expect((await fetch(`${server.url}/jobs/999999/results.zip`, { headers: { cookie: bob.client.cookieHeader! } })).status).toBe(404);
    expect((await fetch(`${server.url}${done.resultsUrl}`)).status).toBe(401);
    for (const sneaky of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e/%2e%2e/etc/passwd', '%E0%A4%A']) {
      expect((await fetch(`${server.url}/jobs/${job.id}/results/${sneaky}`, { headers: { cookie: alice.client.cookieHeader! } })).status).toBe(404);
    }
  });
});

describe('job states', () => {
  it('FAILED keeps the exit code; later jobs are SKIPPED unless the pipeline continues on failure', async () => {
    const pipelineId = await createPipeline(alice.client, 'stops');
    const failing = await addJob(alice.client, { pipelineId, imageId, command: ['sh', '-c', 'echo failing; exit 7'] });
    const after = await addJob(alice.client, { pipelineId, imageId, command: ['echo', 'never'] });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    const pipeline = await waitForPipeline(alice.client, pipelineId);
    expect(pipeline.state).toBe('FAILED');
    expect(pipeline.jobs.map((j) => [j.id, j.state, j.exitCode])).toEqual([[failing.id, 'FAILED', 7], [after.id, 'SKIPPED', null]]);

    await alice.client.request(UpdatePipelineDocument, { id: pipelineId, continueOnFailure: true });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId }); // a finished pipeline can be submitted again
    const again = await waitForPipeline(alice.client, pipelineId);
    expect(again.jobs.map((j) => j.state)).toEqual(['FAILED', 'SUCCEEDED']);
    expect(again.state).toBe('FAILED');
    expect((await jobLog(alice.client, after.id)).map((l) => l.text)).toEqual(['never']);
    // A job that ran before starts its log again: the first run's lines are gone.
    expect((await jobLog(alice.client, failing.id)).filter((l) => l.text === 'failing')).toHaveLength(1);
  });

  it('runs jobs one after another in position order', async () => {
    const pipelineId = await createPipeline(alice.client, 'fifo');
    const jobs = [];
    for (const n of [1, 2, 3]) jobs.push(await addJob(alice.client, { pipelineId, imageId, command: ['sh', '-c', `date +%s%N; sleep 0.2; echo job ${n}`] }));
    await alice.client.request(MoveJobDocument, { id: jobs[2]!.id, position: 0 });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    const pipeline = await waitForPipeline(alice.client, pipelineId);
    expect(pipeline.state).toBe('SUCCEEDED');
    expect(pipeline.jobs.map((j) => j.id)).toEqual([jobs[2]!.id, jobs[0]!.id, jobs[1]!.id]);
    for (let i = 1; i < pipeline.jobs.length; i++) {
      expect(new Date(pipeline.jobs[i]!.startedAt!).getTime()).toBeGreaterThanOrEqual(new Date(pipeline.jobs[i - 1]!.finishedAt!).getTime());
    }
  });

  it('records the final state with the results first, and removes the container and its volumes after', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const { job } = await runOne('sh -c "echo kept > /outbox/kept.txt"');
    expect(job).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(job.results.map((r) => r.name)).toEqual(['kept.txt']);
    const labels = [`io.dockyard.instance=${server.config.instanceId}`, `io.dockyard.job=${job.id}`];
    for (let i = 0; ; i++) {
      const containers = await docker.listContainers({ all: true, filters: JSON.stringify({ label: labels }) });
      const volumes = (await docker.listVolumes({ filters: { label: labels } })).Volumes ?? [];
      if (containers.length === 0 && volumes.length === 0) break;
      if (i > 100) throw new Error('the job container or its volumes are still there');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const stream = await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000), filters: { type: ['container'], event: ['destroy'], label: labels } });
    let text = '';
    for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString();
    const destroyed = text.trim().split('\n').map((line) => JSON.parse(line) as { timeNano: number });
    expect(destroyed).toHaveLength(1);
    expect(destroyed[0]!.timeNano / 1e6).toBeGreaterThanOrEqual(new Date(job.finishedAt!).getTime());
  });

  it('leaves no container behind when the service closes right after a job ended', async () => {
    const env = { ...settings, INSTANCE_ID: `jobs-close-${Date.now()}` };
    const own = await startTestServer(env);
    const client = new GraphqlClient(own.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const pipelineId = await createPipeline(client, 'close after');
    // An attachment ties the job to this instance.
    const job = await addJob(client, { pipelineId, imageId, commandLine: 'cat /inbox/pin', attachments: [null] }, [{ path: 'input.attachments.0', name: 'pin', content: 'x' }]);
    const ws = connectWs(own.wsUrl, { cookie: client.cookieHeader! }).client;
    const updates = subscribe(ws, JobUpdatedDocument, { jobId: job.id });
    await client.request(SubmitPipelineDocument, { id: pipelineId });
    while ((await updates.next(30_000)).data?.jobUpdated.state !== 'SUCCEEDED');
    await ws.dispose();
    await own.close(); // at once: the removal may still be going on, and close waits for it
    const labels = [`io.dockyard.instance=${env.INSTANCE_ID}`];
    expect(await docker.listContainers({ all: true, filters: JSON.stringify({ label: labels }) })).toEqual([]);
    expect((await docker.listVolumes({ filters: { label: labels } })).Volumes ?? []).toEqual([]);
  });

  it('TIMED_OUT: SIGTERM, a grace period, then SIGKILL', async () => {
    const { job } = await runOne('sh -c "trap \'\' TERM; echo ignoring TERM; sleep 60"', { timeoutSeconds: 1 });
    expect(job.state).toBe('TIMED_OUT');
    expect(new Date(job.finishedAt!).getTime() - new Date(job.startedAt!).getTime()).toBeLessThan(8000);
  });

  it('CANCELED: a running job, a waiting one, and a whole pipeline', async () => {
    const pipelineId = await createPipeline(alice.client, 'to cancel', true);
    const running = await addJob(alice.client, { pipelineId, imageId, commandLine: 'sh -c "echo started; sleep 60"' });
    const waiting = await addJob(alice.client, { pipelineId, imageId, commandLine: 'echo second' });
    const third = await addJob(alice.client, { pipelineId, imageId, commandLine: 'echo third' });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    await waitForJob(alice.client, running.id, ['RUNNING']);
    expect(errorCodes(await alice.client.request(AddJobDocument, { input: { pipelineId, imageId, commandLine: 'true' } }))).toEqual(['CONFLICT']);
    expect(errorCodes(await alice.client.request(RemoveJobDocument, { id: waiting.id }))).toEqual(['CONFLICT']);
    expect((await alice.client.request(CancelJobDocument, { id: waiting.id })).data!.cancelJob.state).toBe('CANCELED');
    expect((await alice.client.request(CancelJobDocument, { id: running.id })).data!.cancelJob.cancelRequested).toBe(true);
    expect((await waitForJob(alice.client, running.id)).state).toBe('CANCELED');
    // continueOnFailure: the third still runs.
    const pipeline = await waitForPipeline(alice.client, pipelineId);
    expect(pipeline.jobs.map((j) => j.state)).toEqual(['CANCELED', 'CANCELED', 'SUCCEEDED']);
    expect(pipeline.state).toBe('FAILED');
    expect(third.id).toBe(pipeline.jobs[2]!.id);

    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    await waitForJob(alice.client, running.id, ['RUNNING']);
    expect((await alice.client.request(CancelPipelineDocument, { id: pipelineId })).errors).toBeUndefined();
    const canceled = await waitForPipeline(alice.client, pipelineId);
    expect(canceled.state).toBe('CANCELED');
    expect(canceled.jobs.map((j) => j.state)).toEqual(['CANCELED', 'CANCELED', 'CANCELED']);
  });

  it('ERRORED when the engine cannot run it, with a reason', async () => {
    const built = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'vanishing', dockerfile: 'FROM busybox\nRUN echo x > /x\n', noCache: true })).id);
    const pipelineId = await createPipeline(alice.client, 'engine failure');
    const job = await addJob(alice.client, { pipelineId, imageId: built.image.id, commandLine: 'true' });
    await docker.getImage(built.image.dockerImageId!).remove({ force: true }); // gone behind the service's back
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    const errored = await waitForJob(alice.client, job.id);
    expect(errored.state).toBe('ERRORED');
    expect(errored.error).toMatch(/engine failed/i);
  });

  it('truncates a log over the cap, keeps the job running, and says so', async () => {
    const { job } = await runOne(`sh -c "yes 0123456789012345678901234567890123456789 | head -n 40000; echo finished > /outbox/end"`);
    expect(job.state).toBe('SUCCEEDED');
    expect(job.logTruncated).toBe(true);
    expect(job.results.map((r) => r.name)).toEqual(['end']);
    const log = await jobLog(alice.client, job.id);
    expect(log.at(-1)!.text).toMatch(/^\[log truncated: more than 1048576 bytes/);
    expect(log.length).toBeLessThan(40000);
  });
});

describe('results that cannot be kept', () => {
  it('fails a job that leaves a name with a backslash in /outbox (a zip reader would take it for a path)', async () => {
    const { job } = await runOne(`sh -c "mkdir -p /outbox/a && echo x > '/outbox/a/..\\\\..\\\\evil'"`);
    expect(job).toMatchObject({ state: 'FAILED', results: [] });
    expect(job.error).toMatch(/backslash/);
  });
});

describe('attachments on one instance, submitted on another', () => {
  it('runs the job on the instance that holds its files', async () => {
    const apiOnly = await startTestServer({ JOB_CONCURRENCY: '0' });
    const elsewhere = new GraphqlClient(apiOnly.graphqlUrl);
    elsewhere.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const pipelineId = await createPipeline(alice.client, 'two instances');
    const job = await addJob(alice.client, { pipelineId, imageId, commandLine: 'cat /inbox/here.txt', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'here.txt', content: 'the file is here\n' },
    ]);
    await elsewhere.request(SubmitPipelineDocument, { id: pipelineId });
    expect((await waitForJob(alice.client, job.id)).state).toBe('SUCCEEDED');
    expect((await jobLog(alice.client, job.id)).map((l) => l.text)).toEqual(['the file is here']);
  });
});

describe('limits and isolation', () => {
  it('fails a job whose /outbox is over the cap, saying so, and keeps none of it', async () => {
    const capped = await startTestServer({ ...settings, OUTBOX_MAX_MB: '1', INSTANCE_ID: `outbox-${Date.now()}` });
    const client = new GraphqlClient(capped.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const pipelineId = await createPipeline(client, 'big outbox');
    // An attachment keeps the job on this instance (the one with the small cap).
    const job = await addJob(client, { pipelineId, imageId, commandLine: 'sh -c "head -c 2097152 /dev/zero > /outbox/big.bin"', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'pin', content: 'x' },
    ]);
    await client.request(SubmitPipelineDocument, { id: pipelineId });
    const done = await waitForJob(client, job.id);
    expect(done).toMatchObject({ state: 'FAILED', exitCode: null, results: [], resultsUrl: null });
    expect(done.error).toMatch(/outbox is too large/);
  });

  it('ends a fork bomb, a memory hog and an endless loop clearly, without disturbing a job beside them', async () => {
    const neighbour = await createPipeline(alice.client, 'neighbour');
    const steady = await addJob(alice.client, { pipelineId: neighbour, imageId, commandLine: 'sh -c "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done"' });
    await alice.client.request(SubmitPipelineDocument, { id: neighbour });
    const [bomb, hog, loop] = await Promise.all([
      runOne("sh -c 'bomb() { bomb | bomb & }; bomb; sleep 5'", { timeoutSeconds: 15 }),
      runOne("sh -c 'x=a; while true; do x=$x$x; done'", { memoryMb: 16 }),
      runOne("sh -c 'while true; do :; done'", { timeoutSeconds: 2 }),
    ]);
    expect(['FAILED', 'TIMED_OUT', 'SUCCEEDED']).toContain(bomb.job.state);
    expect(bomb.job.state).not.toBe('ERRORED');
    expect(hog.job).toMatchObject({ state: 'FAILED', exitCode: 137, error: expect.stringMatching(/out of memory/) });
    expect(loop.job.state).toBe('TIMED_OUT');
    const steadyDone = await waitForJob(alice.client, steady.id);
    expect(steadyDone.state).toBe('SUCCEEDED');
    expect((await jobLog(alice.client, steady.id)).map((l) => l.text)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `tick ${i}`));
  });

  it("gives an image's VOLUME paths a bounded tmpfs, not an unlimited disk volume", async () => {
    const withVolume = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'with-volume', dockerfile: 'FROM busybox\nVOLUME /data\n' })).id);
    const pipelineId = await createPipeline(alice.client, 'volume');
    const job = await addJob(alice.client, { pipelineId, imageId: withVolume.image.id, commandLine: 'sh -c "grep \' /data \' /proc/mounts"' });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });
    const done = await waitForJob(alice.client, job.id);
    expect(done.state).toBe('SUCCEEDED');
    expect((await jobLog(alice.client, job.id)).map((l) => l.text).join('\n')).toMatch(/^tmpfs \/data tmpfs .*size=/m);
  });

  it('runs with no network, a read-only root, a writable /tmp, no capabilities', async () => {
    const { job } = await runOne(`sh -c "ls /sys/class/net; touch /rootfile 2>&1 || echo root is read-only; touch /tmp/ok && echo tmp is writable; grep CapEff /proc/self/status; echo x > /inbox/new 2>&1 || echo inbox is read-only"`);
    const log = (await jobLog(alice.client, job.id)).map((l) => l.text);
    expect(log).toContain('lo');
    expect(log).not.toContain('eth0');
    expect(log).toContain('root is read-only');
    expect(log).toContain('tmp is writable');
    expect(log).toContain('CapEff:\t0000000000000000');
    expect(log).toContain('inbox is read-only');
  });
});

describe('bad input', () => {
  it.each([
    [{ commandLine: '' }, 'INVALID_INPUT'],
    [{ command: [] }, 'INVALID_INPUT'],
    [{ commandLine: 'echo "unclosed' }, 'INVALID_INPUT'],
    [{ commandLine: 'env', env: [{ key: 'BAD-NAME', value: 'x' }] }, 'INVALID_INPUT'],
    [{ commandLine: 'true', memoryMb: 100_000 }, 'INVALID_INPUT'],
    [{ commandLine: 'true', timeoutSeconds: 0 }, 'INVALID_INPUT'],
  ])('%j → %s', async (input, code) => {
    const pipelineId = await createPipeline(alice.client, 'bad');
    const result = await alice.client.request(AddJobDocument, { input: { pipelineId, imageId, ...input } });
    expect(errorCodes(result)).toEqual([code]);
  });

  it("refuses another user's image, an unbuilt image, and another user's pipeline", async () => {
    const pipelineId = await createPipeline(alice.client, 'images');
    expect(errorCodes(await bob.client.request(AddJobDocument, { input: { pipelineId, imageId, commandLine: 'true' } }))).toEqual(['NOT_FOUND']);
    const bobs = await createPipeline(bob.client, 'bobs');
    expect(errorCodes(await bob.client.request(AddJobDocument, { input: { pipelineId: bobs, imageId, commandLine: 'true' } }))).toEqual(['NOT_FOUND']);
    const failed = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'never-built', dockerfile: 'FROM busybox\nRUN exit 1\n' })).id);
    expect(errorCodes(await alice.client.request(AddJobDocument, { input: { pipelineId, imageId: failed.image.id, commandLine: 'true' } }))).toEqual(['INVALID_INPUT']);
    expect(errorCodes(await alice.client.request(SubmitPipelineDocument, { id: pipelineId }))).toEqual(['INVALID_INPUT']);
  });

  it.each(['..', '.'])('refuses the attachment name %j', async (name) => {
    const pipelineId = await createPipeline(alice.client, 'names');
    const result = await multipartRequest(alice.client, AddJobDocument, { input: { pipelineId, imageId, commandLine: 'true', attachments: [null] } }, [
      { path: 'input.attachments.0', name, content: 'x' },
    ]);
    expect(errorCodes(result)).toEqual(['INVALID_INPUT']);
  });

  it('refuses too many attachments and too large ones', async () => {
    const small = await startTestServer({ ...settings, UPLOAD_MAX_MB: '1', JOB_MAX_ATTACHMENTS: '2' });
    const client = new GraphqlClient(small.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const pipelineId = await createPipeline(client, 'caps');
    const three = await multipartRequest(client, AddJobDocument, { input: { pipelineId, imageId, commandLine: 'true', attachments: [null, null, null] } },
      ['a', 'b', 'c'].map((name, i) => ({ path: `input.attachments.${i}`, name, content: 'x' })));
    expect(errorCodes(three)).toEqual(['INVALID_INPUT']);
    const big = await multipartRequest(client, AddJobDocument, { input: { pipelineId, imageId, commandLine: 'true', attachments: [null] } }, [
      { path: 'input.attachments.0', name: 'big', content: new Uint8Array(2 * 2 ** 20) },
    ]);
    expect(errorCodes(big)).toEqual(['TOO_LARGE']);
  });
});

describe('pipelines', () => {
  it('lists as a Relay connection filtered by state, renames, reorders, removes and deletes', async () => {
    const user = await loggedInUser(server.graphqlUrl, 'lister');
    const ids = [];
    for (const n of [1, 2, 3]) ids.push(await createPipeline(user.client, `p${n}`));
    const page = (await user.client.request(PipelinesDocument, { first: 2 })).data!.pipelines;
    expect(page.edges.map((e) => e.node.name)).toEqual(['p3', 'p2']);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const rest = (await user.client.request(PipelinesDocument, { first: 2, after: page.pageInfo.endCursor })).data!.pipelines;
    expect(rest.edges.map((e) => e.node.name)).toEqual(['p1']);
    expect((await user.client.request(PipelinesDocument, { state: 'SUCCEEDED' })).data!.pipelines.edges).toEqual([]);
    expect((await user.client.request(PipelinesDocument, { state: 'IDLE' })).data!.pipelines.edges).toHaveLength(3);
    expect((await user.client.request(UpdatePipelineDocument, { id: ids[0]!, name: 'renamed' })).data!.updatePipeline.name).toBe('renamed');
    expect((await user.client.request(DeletePipelineDocument, { id: ids[1]! })).errors).toBeUndefined();
    expect(errorCodes(await user.client.request(PipelineDocument, { id: ids[1]! }))).toEqual(['NOT_FOUND']);

    const pipelineId = await createPipeline(alice.client, 'edit');
    const a = await addJob(alice.client, { pipelineId, imageId, commandLine: 'echo a' });
    const b = await addJob(alice.client, { pipelineId, imageId, commandLine: 'echo b' });
    const c = await addJob(alice.client, { pipelineId, imageId, commandLine: 'echo c' });
    expect((await alice.client.request(MoveJobDocument, { id: a.id, position: 2 })).data!.moveJob.map((j) => j.id)).toEqual([b.id, c.id, a.id]);
    const changed = await alice.client.request(UpdateJobDocument, { id: b.id, commandLine: 'echo "b changed"' });
    expect(changed.data!.updateJob).toMatchObject({ id: b.id, command: ['echo', 'b changed'] });
    expect(errorCodes(await alice.client.request(UpdateJobDocument, { id: b.id, env: [{ key: 'NOT-VALID', value: '' }] }))).toEqual(['INVALID_INPUT']);
    expect(errorCodes(await bob.client.request(UpdateJobDocument, { id: b.id, commandLine: 'true' }))).toEqual(['NOT_FOUND']);
    await alice.client.request(RemoveJobDocument, { id: c.id });
    const after = (await alice.client.request(PipelineDocument, { id: pipelineId })).data!.pipeline.jobs;
    expect(after.map((j) => [j.id, j.position])).toEqual([[b.id, 0], [a.id, 1]]);
    expect(errorCodes(await alice.client.request(MoveJobDocument, { id: a.id, position: 5 }))).toEqual(['INVALID_INPUT']);
  });

  it("reads another user's pipelines, jobs and logs exactly like missing ones", async () => {
    const { pipelineId, job } = await runOne('echo private');
    const missing = await bob.client.request(JobDocument, { id: '2147483000' });
    for (const result of [await bob.client.request(JobDocument, { id: job.id }), await bob.client.request(CancelJobDocument, { id: job.id }), await bob.client.request(RemoveJobDocument, { id: job.id })]) {
      expect(errorCodes(result)).toEqual(['NOT_FOUND']);
      expect(result.errors![0]!.message).toBe(missing.errors![0]!.message);
    }
    for (const result of [
      await bob.client.request(PipelineDocument, { id: pipelineId }),
      await bob.client.request(SubmitPipelineDocument, { id: pipelineId }),
      await bob.client.request(CancelPipelineDocument, { id: pipelineId }),
      await bob.client.request(DeletePipelineDocument, { id: pipelineId }),
      await bob.client.request(UpdatePipelineDocument, { id: pipelineId, name: 'mine now' }),
    ]) {
      expect(errorCodes(result)).toEqual(['NOT_FOUND']);
    }
    const ws = connectWs(server.wsUrl, { cookie: bob.client.cookieHeader }).client;
    expect(errorCodes(await subscribe(ws, JobLogLinesDocument, { jobId: job.id }).next())).toEqual(['NOT_FOUND']);
    expect(errorCodes(await subscribe(ws, JobUpdatedDocument, { jobId: job.id }).next())).toEqual(['NOT_FOUND']);
    expect(errorCodes(await subscribe(ws, PipelineUpdatedDocument, { pipelineId }).next())).toEqual(['NOT_FOUND']);
    await ws.dispose();
  });
});

describe('live logs over graphql-ws', () => {
  it('a viewer joining mid-run, one after the end, and one reconnecting each get every line exactly once', async () => {
    const pipelineId = await createPipeline(alice.client, 'live');
    const job = await addJob(alice.client, { pipelineId, imageId, commandLine: 'sh -c "for i in $(seq 1 20); do echo line $i; sleep 0.1; done"' });
    const expected = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const fromStart = subscribe(ws, JobLogLinesDocument, { jobId: job.id, afterSeq: 0 }); // before the submit
    const states = subscribe(ws, JobUpdatedDocument, { jobId: job.id });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });

    const early: { seq: number; text: string }[] = [];
    while (early.length < 5) early.push((await fromStart.next(15_000)).data!.jobLogLines);
    expect((await alice.client.request(JobDocument, { id: job.id })).data!.job.state).toBe('RUNNING');
    const midRun = subscribe(ws, JobLogLinesDocument, { jobId: job.id, afterSeq: 0 });
    // A viewer that saw five lines, lost its connection, and resumes after the fifth.
    const reconnected = subscribe(connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client, JobLogLinesDocument, { jobId: job.id, afterSeq: early[4]!.seq });

    const all = [...early, ...(await drain(fromStart))];
    expect(all.map((l) => l.text)).toEqual(expected);
    expect(all.map((l) => l.seq)).toEqual(expected.map((_, i) => i + 1));
    expect((await drain(midRun)).map((l) => l.text)).toEqual(expected);
    expect((await drain(reconnected)).map((l) => l.text)).toEqual(expected.slice(5));
    const afterEnd = await drain(subscribe(ws, JobLogLinesDocument, { jobId: job.id, afterSeq: 18 }));
    expect(afterEnd.map((l) => l.text)).toEqual(['line 19', 'line 20']);

    const seen: string[] = [];
    for (;;) {
      const state = (await states.next(15_000)).data!.jobUpdated.state;
      if (seen.at(-1) !== state) seen.push(state);
      if (state === 'SUCCEEDED') break;
    }
    expect(seen).toEqual(expect.arrayContaining(['RUNNING', 'SUCCEEDED']));
    await ws.dispose();
  });

  it('jobLogChunks gives a fast log in chunks of consecutive lines, complete, to a viewer from the start and one resuming', async () => {
    const pipelineId = await createPipeline(alice.client, 'chunks');
    const job = await addJob(alice.client, { pipelineId, imageId, commandLine: 'seq 1 20000' });
    const expected = Array.from({ length: 20_000 }, (_, i) => `${i + 1}\n`).join('');
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const fromStart = subscribe(ws, JobLogChunksDocument, { jobId: job.id });
    await alice.client.request(SubmitPipelineDocument, { id: pipelineId });

    const chunks = await drain(fromStart);
    // Fewer messages than lines: lines stored together travel together.
    expect(chunks.length).toBeLessThan(20_000);
    expect(chunks.map((c) => c.text).join('')).toBe(expected);
    chunks.forEach((chunk, i) => {
      expect(chunk.firstSeq).toBe(i === 0 ? 1 : chunks[i - 1]!.lastSeq + 1);
      expect(chunk.lines.map((l) => l.seq)).toEqual(Array.from({ length: chunk.lastSeq - chunk.firstSeq + 1 }, (_, k) => chunk.firstSeq + k));
      expect(new Set(chunk.lines.map((l) => l.stream))).toEqual(new Set(['stdout']));
    });

    const resumed = await drain(subscribe(ws, JobLogChunksDocument, { jobId: job.id, afterSeq: 19_990 }));
    expect(resumed.map((c) => c.text).join('')).toBe(expected.slice(expected.indexOf('\n19991\n') + 1));
    expect(resumed[0]!.firstSeq).toBe(19_991);
    await ws.dispose();
  });
});

describe('restart in the middle of a running job', () => {
  it('ends the job ERRORED with a reason, removes its container, and leaves nothing RUNNING', async () => {
    const env = { ...settings, INSTANCE_ID: `jobs-restart-${Date.now()}` };
    const first = await startTestServer(env);
    const client = new GraphqlClient(first.graphqlUrl);
    client.cookies.set('dockyard_session', alice.client.cookies.get('dockyard_session')!);
    const pipelineId = await createPipeline(client, 'interrupted');
    // An attachment ties the job to the instance holding it: it runs on `first`, not on another test server.
    const job = await addJob(client, { pipelineId, imageId, commandLine: 'sh -c "cat /inbox/note; sleep 60"', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'note', content: 'before the restart\n' },
    ]);
    await addJob(client, { pipelineId, imageId, commandLine: 'echo next' });
    await client.request(SubmitPipelineDocument, { id: pipelineId });
    await waitForJob(client, job.id, ['RUNNING']);
    // The job is RUNNING from when its container is being made; wait until the container runs.
    let containerId: string | null = null;
    for (let i = 0; i < 100 && !containerId; i++) {
      containerId = ((await docker.listContainers({ filters: JSON.stringify({ label: [`io.dockyard.instance=${env.INSTANCE_ID}`, `io.dockyard.job=${job.id}`] }) }))[0]?.Id) ?? null;
      if (!containerId) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(containerId).not.toBeNull();
    await first.close();

    const second = await startTestServer(env);
    client.url = second.graphqlUrl;
    const ended = await waitForJob(client, job.id);
    expect(ended.state).toBe('ERRORED');
    expect(ended.error).toMatch(/service (stopped|restarted)/);
    const pipeline = await waitForPipeline(client, pipelineId);
    expect(pipeline.state).toBe('FAILED');
    expect(pipeline.jobs.map((j) => j.state)).toEqual(['ERRORED', 'SKIPPED']);
    await expect(docker.getContainer(containerId!).inspect()).rejects.toMatchObject({ statusCode: 404 });
  }, 90_000);
});

function readZip(bytes: Uint8Array): Record<string, string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'zip-'));
  const file = path.join(dir, 'results.zip');
  writeFileSync(file, bytes);
  const script = 'import json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({n: z.read(n).decode() for n in z.namelist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' })) as Record<string, string>;
}
