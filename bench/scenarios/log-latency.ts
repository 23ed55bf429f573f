// Log latency: a job prints a timestamped line every ~50 ms; a graphql-ws subscriber (jobLogLines)
// records when each line arrives. Baseline, on the same lines at the same time: the old way, a client
// polling Kabuto's REST route GET /execution/<jid>/logs/<last id> every second. Also on the same lines:
// the engine's own log stream (a floor: what any client of the engine could see, and the clock check).
import { createJob, lineLatency, submit, timestampedLines } from '../lib/dockyard.ts';
import { demuxLines, docker } from '../lib/engine.ts';
import { Gql } from '../lib/graphql.ts';
import type { Scenario } from '../lib/scenario.ts';
import { latencies, num, ratio } from '../lib/stats.ts';
import { WsConnection } from '../lib/subscriber.ts';

const TARGET_P99_MS = 50;
const POLL_MS = 1000;

export const logLatency: Scenario = {
  name: 'log-latency',
  target: `p99 ≤ ${TARGET_P99_MS} ms`,
  async run(ctx) {
    const jobs = ctx.size(3, 1);
    const lines = ctx.size(300, 60);
    const server = await ctx.startServer({ JOB_CONCURRENCY: '2' });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const connection = await WsConnection.open(server.wsUrl, ctx.fixture.token);
    const subscribed: number[] = [];
    const polled: number[] = [];
    const engine: number[] = [];
    let polls = 0;
    try {
      for (let n = 0; n < jobs; n++) {
        const { pipelineId, jobId } = await createJob(gql, ctx.fixture.imageId, timestampedLines(lines, 50_000), 'log-latency');
        let received = 0;
        const subscription = connection.subscribe('subscription($id: ID!) { jobLogLines(jobId: $id) { seq text } }', { id: jobId }, (data, arrivedAt) => {
          const latency = lineLatency((data as { jobLogLines: { text: string } }).jobLogLines.text, arrivedAt);
          if (latency !== null) {
            subscribed.push(latency);
            received++;
          }
        });
        await submit(gql, pipelineId);
        const floor = followEngineLogs(ctx.instanceId, jobId, engine);
        // The old way: poll every second for the lines after the last one seen, until the job has ended.
        let last = 0;
        let ended = false;
        void subscription.done.then(() => (ended = true), () => (ended = true));
        for (;;) {
          const response = await fetch(`${server.url}/execution/${jobId}/logs/${last}`, { headers: { authorization: `Bearer ${ctx.fixture.token}` } });
          const arrivedAt = Date.now();
          polls++;
          if (!response.ok) throw new Error(`GET /execution/${jobId}/logs/${last}: ${response.status} ${await response.text()}`);
          const page = (await response.json()) as { id: number; logline: string }[];
          for (const line of page) {
            const latency = lineLatency(line.logline, arrivedAt);
            if (latency !== null) polled.push(latency);
            last = line.id;
          }
          if (ended && page.length === 0) break;
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
        await subscription.done;
        await floor;
        if (received !== lines) throw new Error(`the subscriber got ${received} of ${lines} lines`);
      }
    } finally {
      connection.close();
      await server.stop();
    }
    const dockyard = latencies(subscribed);
    const poller = latencies(polled);
    const floor = latencies(engine);
    const show = (l: ReturnType<typeof latencies>) => `p50 ${num(l.p50, 0)} / p95 ${num(l.p95, 0)} / p99 ${num(l.p99, 0)} ms`;
    return {
      dockyard: show(dockyard),
      baseline: `polling every 1 s: ${show(poller)}`,
      ratio: ratio(dockyard.p99, poller.p99),
      met: dockyard.p99 <= TARGET_P99_MS,
      notes: [
        `${jobs} job(s) × ${lines} lines, one every ~55 ms (\`adjtimex\` reads the kernel clock to the microsecond inside the container); latency = arrival at the client − the time in the line; n=${dockyard.n} (subscriber), ${poller.n} (poller, ${polls} polls).`,
        `Baseline: Kabuto's REST route GET /execution/<jid>/logs/<log id> (Dockyard's compatibility router) polled every second, on the same lines at the same time.`,
        `Floor: the engine's own log stream (GET /containers/<id>/logs?follow=1) on the same lines: ${show(floor)} (n=${floor.n}); what is above it is Dockyard's.`,
      ],
      data: { jobs, lines, dockyard, poller, engine: floor },
    };
  },
};

/** Follows the job's container's log on the engine directly, recording each line's latency (lines printed before the follow started are left out). */
async function followEngineLogs(instanceId: string, jobId: string, into: number[]): Promise<void> {
  // Running: a follow on a container that has not started yet ends at once.
  const filters = JSON.stringify({ label: [`io.dockyard.instance=${instanceId}`, `io.dockyard.job=${jobId}`], status: ['running'] });
  let id: string | undefined;
  for (let i = 0; i < 200 && !id; i++) {
    id = (await docker.listContainers({ filters })).find((c) => !c.Labels['io.dockyard.role'])?.Id;
    if (!id) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  if (!id) return;
  const since = Date.now();
  const stream = (await docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true, since: Math.floor(since / 1000) })) as unknown as NodeJS.ReadableStream;
  await demuxLines(stream, (line, arrivedAt) => {
    const latency = lineLatency(line, arrivedAt);
    if (latency !== null && arrivedAt - latency > since + 100) into.push(latency);
  }).catch(() => {});
}
