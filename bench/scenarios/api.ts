// API: requests per second for a `job(id)` query at 50 concurrent keep-alive connections, with the
// API token, against a bare yoga endpoint (bare-yoga.ts, its own process) answering the same query
// with a constant. Alternating rounds; the load generator is this process, the same for both.
import path from 'node:path';
import { createJob } from '../lib/dockyard.ts';
import { Gql } from '../lib/graphql.ts';
import { load, type LoadResult } from '../lib/load.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { startBareYoga } from '../lib/server.ts';
import { num, ratio, summarize, withSpread } from '../lib/stats.ts';

const TARGET = 0.5;
const CONNECTIONS = 50;
const QUERY = 'query($id: ID!) { job(id: $id) { id state exitCode } }';

export const api: Scenario = {
  name: 'api',
  target: `≥ ${TARGET}× bare yoga`,
  async run(ctx) {
    const rounds = ctx.size(6, 2);
    const seconds = ctx.size(10, 3);
    const server = await ctx.startServer({ JOB_CONCURRENCY: '0', BUILD_CONCURRENCY: '0' });
    const bare = await startBareYoga(path.join(ctx.workDir, 'bare-yoga.log'));
    try {
      const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
      const { jobId } = await createJob(gql, ctx.fixture.imageId, ['true'], 'api');
      const body = JSON.stringify({ query: QUERY, variables: { id: jobId } });
      const auth = { authorization: `Bearer ${ctx.fixture.token}` };
      const dockyardRound = () => load(server.graphqlUrl, body, auth, CONNECTIONS, seconds * 1000);
      const bareRound = () => load(bare.graphqlUrl, body, {}, CONNECTIONS, seconds * 1000);
      // Warm-up, not counted: JIT, connection pools, caches.
      await load(server.graphqlUrl, body, auth, CONNECTIONS, 2000);
      await load(bare.graphqlUrl, body, {}, CONNECTIONS, 2000);
      const { a, b } = await alternate(rounds, dockyardRound, bareRound);
      const errors = [...a, ...b].reduce((n, r) => n + r.errors, 0);
      if (errors > 0) throw new Error(`${errors} requests failed`);
      const dockyard = summarize(a.map((r) => r.rps));
      const baseline = summarize(b.map((r) => r.rps));
      const p99 = (results: LoadResult[]) => num(summarize(results.map((r) => r.latency.p99)).median, 1);
      const r = ratio(dockyard.median, baseline.median);
      return {
        dockyard: withSpread(dockyard, 'req/s', 0),
        baseline: `bare yoga: ${withSpread(baseline, 'req/s', 0)}`,
        ratio: r,
        met: r >= TARGET,
        notes: [
          `${rounds} alternating rounds of ${seconds} s each (after 2 s of warm-up each) at ${CONNECTIONS} keep-alive connections; \`${QUERY}\` with the API token (Dockyard) and without (bare yoga).`,
          `Median p99 latency per round: Dockyard ${p99(a)} ms, bare yoga ${p99(b)} ms. The load generator runs in the bench process, on the same 2 cores.`,
        ],
        data: { rounds, seconds, dockyard: a, bare: b },
      };
    } finally {
      await bare.stop();
      await server.stop();
    }
  },
};
