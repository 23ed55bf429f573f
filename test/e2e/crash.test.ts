// A crash in the middle of a running job: the service is killed (SIGKILL, no shutdown), its job
// container keeps running; the next start of the same instance ends the job ERRORED with a reason,
// removes the container, and moves the pipeline on. Nothing stays RUNNING.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { SubmitPipelineDocument } from '../generated/graphql.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startBuild, waitForBuild } from '../support/builds.ts';
import { addJob, createPipeline, jobLog, waitForJob, waitForPipeline } from '../support/jobs.ts';
import { runService } from '../support/process.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/env.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

describe('a crash while a job runs', () => {
  it('ends the job ERRORED at the next start, removes its container, and skips the rest', async () => {
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: TEST_DATABASE_URL,
      REDIS_URL: TEST_REDIS_URL,
      DATA_DIR: mkdtempSync(path.join(tmpdir(), 'dockyard-crash-')),
      INSTANCE_ID: `crash-${Date.now()}`,
      BUILD_CONCURRENCY: '1',
      JOB_CONCURRENCY: '1',
      // Every test logs in from 127.0.0.1, counted in the shared Redis: the limit is not this test's subject.
      LOGIN_RATE_LIMIT: '100000',
    };
    const first = runService(env);
    const user = await loggedInUser(`${await first.ready}/graphql`, 'crash');
    const build = await waitForBuild(user.client, (await startBuild(user.client, { imageName: 'crashing', dockerfile: 'FROM busybox\n' })).id);
    const pipelineId = await createPipeline(user.client, 'interrupted by a crash');
    // An attachment ties the job to this instance (its file is on this instance's disk).
    const job = await addJob(user.client, { pipelineId, imageId: build.image.id, commandLine: 'sh -c "cat /inbox/note; sleep 120"', attachments: [null] }, [
      { path: 'input.attachments.0', name: 'note', content: 'running\n' },
    ]);
    await addJob(user.client, { pipelineId, imageId: build.image.id, commandLine: 'echo never' });
    await user.client.request(SubmitPipelineDocument, { id: pipelineId });
    await waitForJob(user.client, job.id, ['RUNNING']);
    const filters = JSON.stringify({ label: [`io.dockyard.instance=${env.INSTANCE_ID}`, `io.dockyard.job=${job.id}`] });
    let containerId: string | undefined;
    for (let i = 0; i < 100 && !containerId; i++) {
      containerId = (await docker.listContainers({ filters }))[0]?.Id;
      if (!containerId) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(containerId).toBeDefined();

    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect((await docker.getContainer(containerId!).inspect()).State.Running).toBe(true);

    const second = runService(env);
    const client = new GraphqlClient(`${await second.ready}/graphql`);
    client.cookies.set('dockyard_session', user.client.cookies.get('dockyard_session')!);
    expect(second.stdout()).toContain('ended 1 job(s) left running by an earlier run');
    const ended = await waitForJob(client, job.id);
    expect(ended).toMatchObject({ state: 'ERRORED', error: expect.stringMatching(/restarted while the job ran/) });
    // Its log ends with a line saying why, as on every path that does not succeed.
    const lines = await jobLog(client, job.id);
    expect(lines.at(-1)).toMatchObject({ stream: 'system', text: `ERRORED: ${ended.error}` });
    const pipeline = await waitForPipeline(client, pipelineId);
    expect(pipeline.state).toBe('FAILED');
    expect(pipeline.jobs.map((j) => j.state)).toEqual(['ERRORED', 'SKIPPED']);
    await expect(docker.getContainer(containerId!).inspect()).rejects.toMatchObject({ statusCode: 404 });
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 120_000);
});
