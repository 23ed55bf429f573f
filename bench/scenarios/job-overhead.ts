// Job overhead: a one-job pipeline running `echo`, from submitPipeline to the SUCCEEDED event over
// graphql-ws, against create + attach + start + wait + remove of the same container on the engine API.
import { Gql } from '../lib/graphql.ts';
import { createJob, followJob, submit } from '../lib/dockyard.ts';
import { runRaw } from '../lib/engine.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { ratio, summarize, withSpread } from '../lib/stats.ts';
import { WsConnection } from '../lib/subscriber.ts';

const COMMAND = ['echo', 'hello from a bench job'];
const TARGET = 1.1;

export const jobOverhead: Scenario = {
  name: 'job-overhead',
  target: `≤ ${TARGET.toFixed(2)}× raw`,
  async run(ctx) {
    const rounds = ctx.size(20, 4);
    const server = await ctx.startServer({ JOB_CONCURRENCY: '2' });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const connection = await WsConnection.open(server.wsUrl, ctx.fixture.token);
    const setupMs: number[] = [];
    try {
      const dockyardRun = async () => {
        const setupStart = performance.now();
        const { pipelineId, jobId } = await createJob(gql, ctx.fixture.imageId, COMMAND);
        const followed = followJob(connection, jobId);
        await followed.ready;
        setupMs.push(performance.now() - setupStart);
        const start = Date.now();
        await submit(gql, pipelineId);
        const { state, arrivedAt } = await followed.ended;
        if (state !== 'SUCCEEDED') throw new Error(`job ${jobId} ended ${state}`);
        return arrivedAt - start;
      };
      const rawRun = async () => {
        const start = Date.now();
        const { exitCode } = await runRaw(ctx.fixture.dockerImageId, COMMAND);
        if (exitCode !== 0) throw new Error(`raw run exited ${exitCode}`);
        return Date.now() - start;
      };
      // One of each first, not counted: the engine and the server warm up.
      await dockyardRun();
      await rawRun();
      setupMs.length = 0;
      const { a, b } = await alternate(rounds, dockyardRun, rawRun);
      const dockyard = summarize(a);
      const raw = summarize(b);
      const r = ratio(dockyard.median, raw.median);
      return {
        dockyard: withSpread(dockyard, 'ms', 0),
        baseline: withSpread(raw, 'ms', 0),
        ratio: r,
        met: r <= TARGET,
        notes: [
          `${rounds} alternating runs each; Dockyard: submitPipeline → jobUpdated SUCCEEDED (graphql-ws); raw: create, attach, start, wait, remove of the job template's container (same image, argv, limits, hardening; no /inbox, /outbox volumes).`,
          `Not counted above: createPipeline + addJob + subscribing, median ${Math.round(summarize(setupMs).median)} ms.`,
        ],
        data: { rounds, dockyardMs: a, rawMs: b, setupMs },
      };
    } finally {
      connection.close();
      await server.stop();
    }
  },
};
