// Cancelling a pipeline on real PostgreSQL: each waiting job's change is published (jobUpdated and
// pipelineUpdated), once, besides the pipeline's own final state. A recording bus counts the events.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createPubSub } from 'graphql-yoga';
import { openDatabase } from '../../src/db/orm.ts';
import type { EventBus } from '../../src/events/pubsub.ts';
import type { Topics } from '../../src/events/topics.ts';
import type { TaskQueue } from '../../src/scheduler/queue.ts';
import { User } from '../../src/domain/users/user.entity.ts';
import { Image } from '../../src/domain/images/image.entity.ts';
import { Pipeline } from '../../src/domain/pipelines/pipeline.entity.ts';
import { Job } from '../../src/domain/jobs/job.entity.ts';
import { PipelinesService } from '../../src/domain/pipelines/pipelines.service.ts';
import { TEST_DATABASE_URL } from '../support/env.ts';

const orm = await openDatabase({ databaseUrl: TEST_DATABASE_URL, dataDir: '/nonexistent' });
afterAll(() => orm.close());

function recordingBus(): { bus: EventBus; published: { topic: string; args: unknown[] }[] } {
  const inner = createPubSub<Topics>();
  const published: { topic: string; args: unknown[] }[] = [];
  const bus = {
    subscribe: inner.subscribe.bind(inner),
    publish: (topic: string, ...args: unknown[]) => {
      published.push({ topic, args });
      (inner.publish as (topic: string, ...args: unknown[]) => void)(topic, ...args);
    },
  } as unknown as EventBus;
  return { bus, published };
}

describe('cancelling a pipeline', () => {
  it("publishes each waiting job's change exactly once", async () => {
    const em = orm.em.fork();
    const tag = randomUUID().slice(0, 8);
    const user = em.create(User, {
      login: `lc${tag}`, email: `lc${tag}@example.com`, passwordHash: 'x', confirmationHash: 'x'.repeat(64), confirmationExpiresAt: new Date(), confirmedAt: new Date(),
    });
    const image = em.create(Image, { owner: user, name: `lc${tag}`, repository: `dockyard/lc${tag}/img`, tags: [], dockerImageId: 'sha256:x' });
    const pipeline = em.create(Pipeline, { owner: user, name: 'lc', continueOnFailure: false, state: 'RUNNING', submittedAt: new Date() });
    const jobs = [0, 1, 2].map((position) =>
      em.create(Job, {
        pipeline, owner: user, image, position, command: ['true'], env: {}, attachments: [], timeoutSeconds: 10, cpus: 1, memoryBytes: 2 ** 24,
        state: 'QUEUED', results: [], logTruncated: false, workDir: `jobs/lc-${tag}-${position}`, queuedAt: new Date(),
      }),
    );
    await em.flush();
    const { bus, published } = recordingBus();
    const queue = { add: async () => {}, wake: () => {} } as unknown as TaskQueue;
    const pipelines = new PipelinesService({ orm, bus, queue, dataDir: '/nonexistent' });

    const canceled = await pipelines.cancel(user, pipeline.id);

    expect(canceled.state).toBe('CANCELED');
    for (const job of jobs) {
      const own = published.filter((e) => e.topic === 'jobUpdated' && e.args[0] === String(job.id));
      expect(own.map((e) => (e.args[1] as { state: string }).state)).toEqual(['CANCELED']);
      const scoped = published.filter((e) => e.topic === 'pipelineUpdated' && (e.args[1] as { jobId: string }).jobId === String(job.id));
      expect(scoped).toHaveLength(1);
    }
    const pipelineEvents = published.filter((e) => e.topic === 'pipelineUpdated' && (e.args[1] as { jobId: string }).jobId === '');
    expect(pipelineEvents.map((e) => (e.args[1] as { state: string }).state)).toEqual(['CANCELED']);
    expect(published.filter((e) => e.topic === 'jobCancelRequested')).toHaveLength(0);
  });
});
