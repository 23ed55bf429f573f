// Log throughput: one job prints N lines (`seq 1 N`) as fast as it can; S graphql-ws subscribers
// (jobLogChunks, one WebSocket each, all subscribed before the start) must each get every line, in
// order, once. Lines per second from the first line to the last delivery; also until SUCCEEDED (every
// line stored); the server's peak RSS. Baseline: S attach streams on the same container on the engine.
import { createJob, followJob, submit } from '../lib/dockyard.ts';
import { attachLines, docker, rawJobOptions } from '../lib/engine.ts';
import { Gql } from '../lib/graphql.ts';
import type { Scenario } from '../lib/scenario.ts';
import { MiB, num, ratio } from '../lib/stats.ts';
import { openMany, WsConnection } from '../lib/subscriber.ts';

const TARGET = 100_000;

export const logThroughput: Scenario = {
  name: 'log-throughput',
  target: `≥ ${num(TARGET, 0)} lines/s`,
  async run(ctx) {
    const lines = ctx.param('THROUGHPUT_LINES', 200_000, 20_000);
    const subscribers = ctx.param('THROUGHPUT_SUBSCRIBERS', 100, 10);
    const command = ['seq', '1', String(lines)];

    // Baseline first: the engine alone, S attach streams on one container.
    const raw = await rawRun(ctx.fixture.dockerImageId, command, lines, subscribers);
    ctx.log(`raw: ${num(raw.linesPerSecond, 0)} lines/s to ${subscribers} attach streams`);

    // Log lines are capped per job (JOB_LOG_MAX_MB); the cap is raised so that every line is kept.
    const server = await ctx.startServer({ JOB_CONCURRENCY: '1', JOB_LOG_MAX_MB: '1024' });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const control = await WsConnection.open(server.wsUrl, ctx.fixture.token);
    const connections = await openMany(server.wsUrl, ctx.fixture.token, subscribers);
    const before = await server.memory();
    try {
      const { pipelineId, jobId } = await createJob(gql, ctx.fixture.imageId, command, 'log-throughput');
      const followed = followJob(control, jobId);
      await followed.ready;
      const progress = connections.map(() => ({ next: 1, lastAt: 0, error: null as string | null }));
      // Every line's text, and where each line starts in it: a chunk is checked with one slice and compare.
      const expected = Array.from({ length: lines }, (_, i) => `${i + 1}\n`).join('');
      const offsets = [0, 0];
      for (let seq = 1; seq <= lines; seq++) offsets.push(offsets[seq]! + String(seq).length + 1);
      const subscriptions = connections.map((connection, i) =>
        connection.subscribe('subscription($id: ID!) { jobLogChunks(jobId: $id) { firstSeq lastSeq text } }', { id: jobId }, (data, arrivedAt) => {
          const { firstSeq, lastSeq, text } = (data as { jobLogChunks: { firstSeq: number; lastSeq: number; text: string } }).jobLogChunks;
          const p = progress[i]!;
          if (p.error) return;
          if (firstSeq !== p.next || lastSeq > lines || text !== expected.slice(offsets[firstSeq], offsets[lastSeq + 1])) {
            p.error = `expected a chunk from line ${p.next}, got lines ${firstSeq}–${lastSeq} "${text.slice(0, 40)}"`;
          }
          p.next = lastSeq + 1;
          p.lastAt = arrivedAt;
        }),
      );
      const failures: string[] = [];
      let firstFailure!: () => void;
      const failing = new Promise<void>((resolve) => (firstFailure = resolve));
      subscriptions.forEach((s) => s.done.catch((error: Error) => (failures.push(error.message), firstFailure())));
      const ticker = setInterval(() => {
        const slowest = Math.min(...progress.map((p) => p.next - 1));
        void server.memory().then(({ rss }) => ctx.log(`  slowest subscriber has ${num(slowest, 0)} of ${num(lines, 0)} lines; ${failures.length} failed; server RSS ${num(rss / MiB, 0)} MiB`));
      }, ctx.quick ? 2_000 : 15_000);
      await submit(gql, pipelineId);
      // Once a subscription has failed the scenario has failed: a few seconds more to count the others, then stop.
      const failFast = failing.then(() => new Promise<void>((resolve) => setTimeout(resolve, 5000)));
      const ended = await Promise.race([followed.ended, failFast.then(() => followed.ended)]);
      ctx.log(`job ${ended.state}; waiting for the subscribers`);
      const settled = await Promise.race([Promise.allSettled(subscriptions.map((s) => s.done)), failFast.then(() => null)]);
      clearInterval(ticker);
      const after = await server.memory();
      const { job } = await gql.request<{ job: { state: string; logLines: { at: string }[] } }>(
        'query($id: ID!) { job(id: $id) { state logLines(afterSeq: 0, first: 1) { at } } }',
        { id: jobId },
      );
      const firstAt = Date.parse(job.logLines[0]!.at);
      const stored = lines / ((ended.arrivedAt - firstAt) / 1000);
      if (job.state !== 'SUCCEEDED') throw new Error(`the job ended ${job.state}`);
      // Subscriptions that the server ended with an error are Dockyard's failure to deliver, not the bench's.
      const failed = settled ? settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : [])) : failures;
      const disorder = progress.filter((p) => p.error);
      if (failed.length > 0 || disorder.length > 0) {
        const got = progress.map((p) => p.next - 1);
        return {
          dockyard: `FAILED: ${failed.length} of ${subscribers} subscriptions ended with an error ("${failed[0] ?? '-'}") within ${num((Date.now() - firstAt) / 1000, 0)} s${disorder.length ? `, ${disorder.length} out of order` : ''}`,
          baseline: `engine, ${subscribers} attach streams: ${num(raw.linesPerSecond, 0)} lines/s`,
          ratio: null,
          met: false,
          notes: [
            `${num(lines, 0)} lines to ${subscribers} subscribers: stopped 5 s after the first subscription failed, when the subscribers had ${num(Math.min(...got), 0)}–${num(Math.max(...got), 0)} lines; the job stored every line at ${num(stored, 0)} lines/s; server peak RSS ${num(after.peak / MiB, 0)} MiB. The server log (${server.logFile}) says why.`,
          ],
          data: { lines, subscribers, failed: failed.length, failures: failed.slice(0, 5), disorder: disorder.map((p) => p.error), got, stored, peakRss: after.peak, raw },
        };
      }
      const lastDelivery = subscribers > 0 ? Math.max(...progress.map((p) => p.lastAt)) : ended.arrivedAt;
      const delivered = lines / ((lastDelivery - firstAt) / 1000);
      return {
        dockyard: `${num(delivered, 0)} lines/s delivered (${num(stored, 0)} stored); peak RSS ${num(after.peak / MiB, 0)} MiB`,
        baseline: `engine, ${subscribers} attach streams: ${num(raw.linesPerSecond, 0)} lines/s`,
        ratio: ratio(delivered, raw.linesPerSecond),
        met: delivered >= TARGET,
        notes: [
          `${num(lines, 0)} lines (\`seq 1 ${lines}\`) to ${subscribers} subscribers, each on its own WebSocket (jobLogChunks: consecutive lines per message), all checked complete and in order; delivered: first line read by the server → last line at the last subscriber (${num((lastDelivery - firstAt) / 1000, 1)} s); stored: → jobUpdated SUCCEEDED (${num((ended.arrivedAt - firstAt) / 1000, 1)} s).`,
          `Server RSS ${num(before.rss / MiB, 0)} MiB before, peak (VmHWM) ${num(after.peak / MiB, 0)} MiB.`,
          `Baseline: the same container on the engine with ${subscribers} attach streams, first line → last line on the last stream (${num(raw.seconds, 2)} s)${raw.lost > 0 ? `; the engine's attach streams lost ${num(raw.lost, 0)} lines${raw.garbled ? ` (${num(raw.garbled, 0)} garbled)` : ''}, so its rate counts what arrived` : ''}.`,
        ],
        data: { lines, subscribers, delivered, stored, seconds: (lastDelivery - firstAt) / 1000, rssBefore: before.rss, peakRss: after.peak, raw },
      };
    } finally {
      control.close();
      for (const connection of connections) connection.close();
      await server.stop();
    }
  },
};

/** The engine alone: S attach streams on one container printing N lines; first line → last line on the last stream. */
async function rawRun(image: string, command: string[], lines: number, streams: number): Promise<{ linesPerSecond: number; seconds: number; lost: number; garbled: number }> {
  const container = await docker.createContainer(rawJobOptions(image, command));
  try {
    // The engine's attach streams can lose output under load (seen here: a few hundred lines at a time,
    // the same on every stream, in the middle or at the end of a run, sometimes cutting a line in two),
    // so lost and garbled lines are counted, not fatal.
    const received = new Array<number>(streams).fill(0);
    const next = new Array<number>(streams).fill(1);
    let garbled = 0;
    let first = 0;
    let last = 0;
    const attached = await Promise.all(
      received.map((_, i) =>
        attachLines(container, (line, arrivedAt) => {
          const seq = Number(line);
          if (seq >= next[i]!) {
            next[i] = seq + 1;
            received[i]!++;
          } else garbled++;
          first ||= arrivedAt;
          last = Math.max(last, arrivedAt);
        }),
      ),
    );
    await container.start();
    await Promise.all([container.wait(), ...attached.map((a) => a.ended)]);
    const seconds = (last - first) / 1000;
    const slowest = Math.min(...received);
    return { linesPerSecond: slowest / seconds, seconds, lost: lines - slowest, garbled };
  } finally {
    await container.remove({ force: true, v: true });
  }
}
