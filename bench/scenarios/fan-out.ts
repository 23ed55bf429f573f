// Fan-out: S WebSocket subscribers (jobLogLines, one socket each) on one job that prints a timestamped
// line every ~200 ms; delivery latency of every line at every subscriber (arrival − the time in the
// line), p99. Baseline: S attach streams on the same container on the engine.
import { createJob, lineLatency, submit, timestampedLines } from '../lib/dockyard.ts';
import { attachLines, docker, rawJobOptions } from '../lib/engine.ts';
import { Gql } from '../lib/graphql.ts';
import type { Scenario } from '../lib/scenario.ts';
import { latencies, MiB, num, ratio } from '../lib/stats.ts';
import { openMany } from '../lib/subscriber.ts';

const TARGET_P99_MS = 100;

export const fanOut: Scenario = {
  name: 'fan-out',
  target: `p99 ≤ ${TARGET_P99_MS} ms`,
  async run(ctx) {
    const subscribers = ctx.param('FANOUT_SUBSCRIBERS', 1000, 100);
    const lines = ctx.param('FANOUT_LINES', 100, 30);
    const command = timestampedLines(lines, 200_000);

    const raw = await rawRun(ctx.fixture.dockerImageId, command, subscribers);
    const rawLatency = latencies(raw.samples);
    ctx.log(`raw: ${subscribers} attach streams, p99 ${num(rawLatency.p99, 0)} ms`);

    const server = await ctx.startServer({ JOB_CONCURRENCY: '1' });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const opening = performance.now();
    const connections = await openMany(server.wsUrl, ctx.fixture.token, subscribers);
    const openSeconds = (performance.now() - opening) / 1000;
    const samples: number[] = [];
    const counts = new Array<number>(subscribers).fill(0);
    try {
      const { pipelineId, jobId } = await createJob(gql, ctx.fixture.imageId, command, 'fan-out');
      const subscriptions = connections.map((connection, i) =>
        connection.subscribe('subscription($id: ID!) { jobLogLines(jobId: $id) { seq text } }', { id: jobId }, (data, arrivedAt) => {
          const latency = lineLatency((data as { jobLogLines: { text: string } }).jobLogLines.text, arrivedAt);
          if (latency === null) return;
          samples.push(latency);
          counts[i]!++;
        }),
      );
      // Subscribed and idle before the job starts, as watchers of a queued job would be.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const idle = await server.memory();
      await submit(gql, pipelineId);
      const settled = await Promise.allSettled(subscriptions.map((s) => s.done));
      const after = await server.memory();
      const show = (l: ReturnType<typeof latencies>) => `p99 ${num(l.p99, 0)} ms (p50 ${num(l.p50, 0)}, p95 ${num(l.p95, 0)}, max ${num(l.max, 0)})`;
      // Subscriptions that the server ended with an error are Dockyard's failure to deliver, not the bench's.
      const failed = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : []));
      const incomplete = counts.filter((c) => c !== lines).length;
      if (failed.length > 0 || incomplete > 0) {
        return {
          dockyard: `FAILED: ${failed.length} of ${subscribers} subscriptions ended with an error ("${failed[0] ?? '-'}"), ${incomplete} incomplete`,
          baseline: `engine, ${subscribers} attach streams: ${show(rawLatency)}`,
          ratio: null,
          met: false,
          notes: [`Of what was delivered: ${show(latencies(samples))}. The server log (${server.logFile}) says why.`],
          data: { subscribers, lines, failed: failed.length, failures: failed.slice(0, 5), incomplete, raw: rawLatency },
        };
      }
      const dockyard = latencies(samples);
      return {
        dockyard: show(dockyard),
        baseline: `engine, ${subscribers} attach streams: ${show(rawLatency)}`,
        ratio: ratio(dockyard.p99, rawLatency.p99),
        met: dockyard.p99 <= TARGET_P99_MS,
        notes: [
          `${num(subscribers, 0)} subscribers, each on its own WebSocket (opened in ${num(openSeconds, 1)} s), subscribed 2 s before the job starts; ${lines} lines, one every ~210 ms; ${num(dockyard.n, 0)} deliveries, all complete.`,
          `Server RSS ${num(idle.rss / MiB, 0)} MiB with the subscribers idle, peak ${num(after.peak / MiB, 0)} MiB.`,
          `Baseline: the same container on the engine with ${subscribers} attach streams (${num(rawLatency.n, 0)} deliveries).`,
        ],
        data: { subscribers, lines, dockyard, raw: rawLatency, openSeconds, idleRss: idle.rss, peakRss: after.peak },
      };
    } finally {
      for (const connection of connections) connection.close();
      await server.stop();
    }
  },
};

async function rawRun(image: string, command: string[], streams: number): Promise<{ samples: number[] }> {
  const container = await docker.createContainer(rawJobOptions(image, command));
  const samples: number[] = [];
  try {
    const attached = [];
    for (let i = 0; i < streams; i += 50) {
      attached.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, streams - i) }, () =>
            attachLines(container, (line, arrivedAt) => {
              const latency = lineLatency(line, arrivedAt);
              if (latency !== null) samples.push(latency);
            }),
          ),
        )),
      );
    }
    await container.start();
    await Promise.all([container.wait(), ...attached.map((a) => a.ended)]);
    return { samples };
  } finally {
    await container.remove({ force: true, v: true });
  }
}
