// Reading jobs by id: the `job` query under concurrent requests of two users (the rows are read in
// batches shared across requests, see src/domain/jobs/job-rows.ts), and the batching itself.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { JobDocument } from '../generated/graphql.ts';
import { errorCodes } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { startBuild, waitForBuild } from '../support/builds.ts';
import { addJob, createPipeline } from '../support/jobs.ts';
import { testDatabase } from '../support/db.ts';
import { TEST_DATABASE_URL } from '../support/env.ts';
import { openDatabase } from '../../src/db/orm.ts';
import { JobRows } from '../../src/domain/jobs/job-rows.ts';

const server = await startTestServer({ BUILD_CONCURRENCY: '1' });
const db = testDatabase();
const alice = await loggedInUser(server.graphqlUrl, 'alice');
const bob = await loggedInUser(server.graphqlUrl, 'bob');
const image = await waitForBuild(alice.client, (await startBuild(alice.client, { imageName: 'reads', dockerfile: 'FROM busybox\n' })).id);
const pipelineId = await createPipeline(alice.client, 'reads');
const first = await addJob(alice.client, { pipelineId, imageId: image.image.id, command: ['echo', 'one'] });
const second = await addJob(alice.client, { pipelineId, imageId: image.image.id, command: ['echo', 'two'] });

describe('the job query', () => {
  it('answers many concurrent requests of two users, each with their own jobs only', async () => {
    const asks = Array.from({ length: 40 }, (_, i) => {
      const client = i % 4 === 3 ? bob.client : alice.client;
      const id = i % 2 === 0 ? first.id : second.id;
      return { client, id, result: client.request(JobDocument, { id }) };
    });
    for (const { client, id, result } of asks) {
      const answer = await result;
      if (client === bob.client) {
        expect(errorCodes(answer)).toEqual(['NOT_FOUND']);
      } else {
        expect(answer.errors).toBeUndefined();
        expect(answer.data!.job).toMatchObject({ id, command: ['echo', id === first.id ? 'one' : 'two'], state: 'READY' });
      }
    }
    expect(errorCodes(await alice.client.request(JobDocument, { id: '999999999' }))).toEqual(['NOT_FOUND']);
  });
});

// The batcher on an ORM of its own, so that its statements can be counted.
const orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: '/nonexistent' });
afterAll(() => orm.close());

describe('JobRows', () => {
  it('reads what is asked for in one turn of the event loop with one statement', async () => {
    const rows = new JobRows(orm);
    const execute = vi.spyOn(orm.em.getConnection(), 'execute');
    const [a, b, again, missing] = await Promise.all([rows.read(Number(first.id)), rows.read(Number(second.id)), rows.read(Number(first.id)), rows.read(999_999_999)]);
    expect(execute).toHaveBeenCalledTimes(1);
    expect([a?.['command'], b?.['command'], again?.['command'], missing]).toEqual([['echo', 'one'], ['echo', 'two'], ['echo', 'one'], undefined]);
    execute.mockRestore();
  });

  it('answers a read only with a statement sent after it was asked for', async () => {
    const rows = new JobRows(orm);
    const execute = vi.spyOn(orm.em.getConnection(), 'execute');
    const before = rows.read(Number(first.id));
    await vi.waitFor(() => expect(execute).toHaveBeenCalledTimes(1)); // that batch is on its way
    await db.query('update jobs set timeout_seconds = timeout_seconds + 1 where id = $1', [first.id]);
    const after = await rows.read(Number(first.id));
    expect(execute).toHaveBeenCalledTimes(2);
    expect(after!['timeout_seconds']).toBe((await before)!['timeout_seconds'] as number + 1);
    execute.mockRestore();
  });
});
