// Job overhead: a one-job pipeline running `echo`, from submitPipeline to the SUCCEEDED event over
// graphql-ws, against create + attach + start + wait + remove of the same container on the engine API.
import { Gql } from '../lib/graphql.ts';
import { createJob, followJob, submit } from '../lib/dockyard.ts';
import { engineCpuSeconds, runRaw } from '../lib/engine.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { compareTimes, summarize } from '../lib/stats.ts';
import { WsConnection } from '../lib/subscriber.ts';
import { printBreakdown } from '../lib/trace-report.ts';

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
    const dockyardWindows: [number, number][] = [];
    const rawWindows: [number, number][] = [];
    const engineCpu = { dockyard: [] as number[], raw: [] as number[] };
    const measureEngine = async <T>(into: number[], work: () => Promise<T>): Promise<T> => {
      const before = await engineCpuSeconds();
      const result = await work();
      into.push(((await engineCpuSeconds()) ?? Number.NaN) - (before ?? Number.NaN));
      return result;
    };
    let a: number[];
    let b: number[];
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
        dockyardWindows.push([start, arrivedAt]);
        return arrivedAt - start;
      };
      const rawRun = async () => {
        const start = Date.now();
        const { exitCode } = await runRaw(ctx.fixture.dockerImageId, COMMAND);
        if (exitCode !== 0) throw new Error(`raw run exited ${exitCode}`);
        rawWindows.push([start, Date.now()]);
        return Date.now() - start;
      };
      // One of each first, not counted: the engine and the server warm up.
      await dockyardRun();
      await rawRun();
      setupMs.length = 0;
      ({ a, b } = await alternate(
        rounds,
        () => measureEngine(engineCpu.dockyard, dockyardRun),
        () => measureEngine(engineCpu.raw, rawRun),
      ));
    } finally {
      connection.close();
      await server.stop();
    }
    if (server.traceFile) await printBreakdown(ctx.log, server.traceFile, dockyardWindows.slice(-rounds), rawWindows.slice(-rounds));
    return {
      ...compareTimes(a, b, TARGET),
      notes: [
        `${rounds} alternating runs each (after one warm-up run each); Dockyard: submitPipeline → jobUpdated SUCCEEDED (graphql-ws); raw: create, attach, start, wait, remove of the job template's container (same image, argv, limits, hardening; without the /inbox and /outbox volumes).`,
        `Not counted above: createPipeline + addJob + subscribing, median ${Math.round(summarize(setupMs).median)} ms.`,
        `Engine CPU (dockerd + containerd + helpers) per run, median: ${Math.round(summarize(engineCpu.dockyard).median * 1000)} ms with Dockyard, ${Math.round(summarize(engineCpu.raw).median * 1000)} ms raw. BENCH_TRACE=1 prints every engine request and SQL query of a job.`,
      ],
      data: { rounds, dockyardMs: a, rawMs: b, setupMs, engineCpuSeconds: engineCpu },
    };
  },
};
