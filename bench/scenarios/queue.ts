// Queue: N one-job pipelines (`echo`) submitted at once to an instance with JOB_CONCURRENCY=8; jobs per
// second from the first submit to the last job's finishedAt. Baseline: the same N containers run on
// the engine 8 at a time (create, attach, start, wait, remove).
import pg from 'pg';
import { createJob, FINISHED_JOB } from '../lib/dockyard.ts';
import { engineCpuSeconds, runRaw } from '../lib/engine.ts';
import { Gql } from '../lib/graphql.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { processCpuSeconds } from '../lib/server.ts';
import { num, ratio, summarize, withSpread } from '../lib/stats.ts';

const TARGET = 0.9;
const CONCURRENCY = 8;
const COMMAND = ['echo', 'queued'];

export const queue: Scenario = {
  name: 'queue',
  target: `≥ ${TARGET}× raw`,
  async run(ctx) {
    const jobs = ctx.param('QUEUE_JOBS', 300, 24);
    const rounds = ctx.size(2, 1);
    const server = await ctx.startServer({ JOB_CONCURRENCY: String(CONCURRENCY) });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const db = new pg.Client({ connectionString: ctx.databaseUrl });
    await db.connect();
    const latencies: number[] = [];
    // CPU per job: the engine's (dockerd, containerd and helpers) and the Dockyard server's.
    const cpu = { dockyardEngine: [] as number[], dockyardServer: [] as number[], rawEngine: [] as number[] };
    try {
      const dockyardRound = async () => {
        // Set up (not timed): N pipelines of one job each.
        const made = await inParallel(jobs, 8, () => createJob(gql, ctx.fixture.imageId, COMMAND, 'queue'));
        const start = Date.now();
        const engineBefore = await engineCpuSeconds();
        const serverBefore = await processCpuSeconds(server.pid);
        await inParallel(made.length, 16, (i) => gql.request('mutation($id: ID!) { submitPipeline(id: $id) { id } }', { id: made[i]!.pipelineId }));
        // Watched in the database (a read-only observer): the exact finish times, without loading the API.
        const ids = made.map((m) => Number(m.jobId));
        for (;;) {
          const { rows } = await db.query<{ done: string }>('select count(*) as done from jobs where id = any($1) and state = any($2)', [ids, FINISHED_JOB]);
          if (Number(rows[0]!.done) === ids.length) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        const { rows } = await db.query<{ state: string; queued_at: Date; finished_at: Date }>('select state, queued_at, finished_at from jobs where id = any($1)', [ids]);
        const failed = rows.filter((r) => r.state !== 'SUCCEEDED');
        if (failed.length > 0) throw new Error(`${failed.length} job(s) did not succeed (${failed[0]!.state})`);
        const end = Math.max(...rows.map((r) => r.finished_at.getTime()));
        cpu.dockyardEngine.push((((await engineCpuSeconds()) ?? Number.NaN) - (engineBefore ?? Number.NaN)) / jobs);
        cpu.dockyardServer.push(((await processCpuSeconds(server.pid)) - serverBefore) / jobs);
        latencies.push(...rows.map((r) => r.finished_at.getTime() - r.queued_at.getTime()));
        return jobs / ((end - start) / 1000);
      };
      const rawRound = async () => {
        const start = Date.now();
        const engineBefore = await engineCpuSeconds();
        await inParallel(jobs, CONCURRENCY, async () => {
          const { exitCode } = await runRaw(ctx.fixture.dockerImageId, COMMAND);
          if (exitCode !== 0) throw new Error(`raw run exited ${exitCode}`);
        });
        cpu.rawEngine.push((((await engineCpuSeconds()) ?? Number.NaN) - (engineBefore ?? Number.NaN)) / jobs);
        return jobs / ((Date.now() - start) / 1000);
      };
      const { a, b } = await alternate(rounds, dockyardRound, rawRound);
      const dockyard = summarize(a);
      const raw = summarize(b);
      const r = ratio(dockyard.median, raw.median);
      return {
        dockyard: withSpread(dockyard, 'jobs/s', 2),
        baseline: `${CONCURRENCY}-way raw: ${withSpread(raw, 'runs/s', 2)}`,
        ratio: r,
        met: r >= TARGET,
        notes: [
          `${jobs} one-job pipelines (\`echo\`), JOB_CONCURRENCY=${CONCURRENCY}, ${rounds} alternating round(s) each; Dockyard: first submitPipeline → last job's finishedAt (submits 16 at a time); raw: the same ${jobs} runs, ${CONCURRENCY} at a time.`,
          `Dockyard per job, queued → finished: median ${num(summarize(latencies).median / 1000, 1)} s, max ${num(summarize(latencies).max / 1000, 1)} s.`,
          `CPU per job (median of rounds): engine (dockerd + containerd + helpers) ${ms(cpu.dockyardEngine)} ms with Dockyard vs ${ms(cpu.rawEngine)} ms raw; the Dockyard server itself ${ms(cpu.dockyardServer)} ms. 2 cores = 2,000 ms of CPU per second.`,
        ],
        data: { jobs, rounds, dockyardJobsPerSecond: a, rawRunsPerSecond: b, cpuSecondsPerJob: cpu },
      };
    } finally {
      await db.end();
      await server.stop();
    }
  },
};

function ms(samples: number[]): string {
  return num(summarize(samples).median * 1000, 0);
}

/** Runs `work(i)` for i < count, at most `parallel` at a time; results in order. */
async function inParallel<T>(count: number, parallel: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await work(i);
      }
    }),
  );
  return results;
}
