// Uploads: a 1 GiB attachment streamed in (addJob, a GraphQL multipart request, never held in memory
// on the client); the server's RSS growth while it arrives, and the rate. Baseline: the same bytes as a
// tar streamed into a container with the engine's archive API (what Dockyard's loader does), with
// dockerd's RSS growth (dockerd also serves the other engineer's tests: read it as a rough figure).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import { Readable } from 'node:stream';
import { docker, dockerdPid, rawJobOptions } from '../lib/engine.ts';
import { Gql, graphqlData } from '../lib/graphql.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { processMemory, sampleRss } from '../lib/server.ts';
import { MiB, num, ratio, summarize, withSpread } from '../lib/stats.ts';

const TARGET_MIB = 64;
const CHUNK = randomBytes(MiB);

export const uploads: Scenario = {
  name: 'uploads',
  target: `RSS growth ≤ ${TARGET_MIB} MiB`,
  async run(ctx) {
    const sizeMiB = ctx.param('UPLOAD_MIB', 1024, 128);
    const rounds = ctx.size(3, 1);
    const server = await ctx.startServer({ UPLOAD_MAX_MB: String(sizeMiB + 64), JOB_CONCURRENCY: '1' });
    const gql = new Gql(server.graphqlUrl, ctx.fixture.token);
    const enginePid = await dockerdPid();
    const growth: number[] = [];
    const rates: number[] = [];
    const engineGrowth: number[] = [];
    const engineRates: number[] = [];
    let warmUpGrowth = 0;
    let hwm = { before: 0, after: 0 };
    try {
      const dockyardRound = async (_round: number, size = sizeMiB) => {
        const { createPipeline } = await gql.request<{ createPipeline: { id: string } }>('mutation { createPipeline(name: "uploads") { id } }');
        const before = (await server.memory()).rss;
        const sampler = sampleRss(server.pid);
        const start = performance.now();
        const jobId = await uploadAttachment(server.graphqlUrl, ctx.fixture.token, { pipelineId: createPipeline.id, imageId: ctx.fixture.imageId, command: ['true'] }, size);
        const seconds = (performance.now() - start) / 1000;
        const peak = await sampler.stop();
        const { job } = await gql.request<{ job: { attachments: { size: number }[] } }>('query($id: ID!) { job(id: $id) { attachments { size } } }', { id: jobId });
        if (job.attachments[0]?.size !== size * MiB) throw new Error(`the attachment arrived with ${job.attachments[0]?.size} bytes`);
        // The 1 GiB file goes with the pipeline.
        await gql.request('mutation($id: ID!) { deletePipeline(id: $id) { id } }', { id: createPipeline.id });
        return { growth: (peak - before) / MiB, rate: size / seconds };
      };
      const engineRound = async () => {
        const container = await docker.createContainer({ ...rawJobOptions(ctx.fixture.dockerImageId, ['true']), HostConfig: { ReadonlyRootfs: false } });
        try {
          const before = enginePid ? (await processMemory(enginePid)).rss : 0;
          const sampler = enginePid ? sampleRss(enginePid) : null;
          const start = performance.now();
          await container.putArchive(tarOf(sizeMiB) as unknown as NodeJS.ReadableStream, { path: '/tmp' });
          const seconds = (performance.now() - start) / 1000;
          const peak = (await sampler?.stop()) ?? 0;
          engineGrowth.push((peak - before) / MiB);
          engineRates.push(sizeMiB / seconds);
        } finally {
          await container.remove({ force: true, v: true });
        }
      };
      // A small upload first, not counted: the first multipart request loads code and grows the heap once.
      warmUpGrowth = (await dockyardRound(-1, 16)).growth;
      hwm.before = (await server.memory()).peak;
      await alternate(
        rounds,
        async (round) => {
          const { growth: g, rate } = await dockyardRound(round);
          growth.push(g);
          rates.push(rate);
        },
        engineRound,
      );
      hwm = { ...hwm, after: (await server.memory()).peak };
    } finally {
      await server.stop();
    }
    const worst = Math.max(...growth);
    const rate = summarize(rates);
    const engineRate = summarize(engineRates);
    return {
      dockyard: `RSS +${num(worst, 0)} MiB (worst of ${rounds}); ${withSpread(rate, 'MiB/s', 0)}`,
      baseline: `engine putArchive: dockerd RSS +${num(Math.max(...engineGrowth), 0)} MiB; ${withSpread(engineRate, 'MiB/s', 0)}`,
      ratio: ratio(rate.median, engineRate.median),
      met: worst <= TARGET_MIB,
      notes: [
        `${num(sizeMiB, 0)} MiB attachment per round (random bytes, streamed with backpressure), ${rounds} alternating round(s); RSS growth = highest VmRSS sampled every 20 ms during the upload − VmRSS before it. Ratio: upload rate vs the engine's.`,
        `Dockyard RSS growth per round: ${growth.map((g) => num(g, 0)).join(', ')} MiB; its peak (VmHWM) went from ${num(hwm.before / MiB, 0)} to ${num(hwm.after / MiB, 0)} MiB over the rounds. Not counted: a 16 MiB warm-up upload first (+${num(warmUpGrowth, 0)} MiB: the first multipart request loads code and grows the heap once).`,
        `dockerd RSS growth per round: ${engineGrowth.map((g) => num(g, 0)).join(', ')} MiB (the engine unpacks in a helper process that this does not count).`,
      ],
      data: { sizeMiB, rounds, growthMiB: growth, rateMiBs: rates, warmUpGrowthMiB: warmUpGrowth, peakBefore: hwm.before, peakAfter: hwm.after, engineGrowthMiB: engineGrowth, engineRateMiBs: engineRates },
    };
  },
};

/** addJob with one attachment of `sizeMiB` MiB, as a multipart request written chunk by chunk (waiting for drain). */
async function uploadAttachment(graphqlUrl: string, token: string, input: Record<string, unknown>, sizeMiB: number): Promise<string> {
  const query = 'mutation($i: AddJobInput!) { addJob(input: $i) { id } }';
  const boundary = `----bench${randomBytes(8).toString('hex')}`;
  const field = (name: string, value: string) => `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head = Buffer.from(
    field('operations', JSON.stringify({ query, variables: { i: { ...input, attachments: [null] } } })) +
      field('map', JSON.stringify({ 0: ['variables.i.attachments.0'] })) +
      `--${boundary}\r\ncontent-disposition: form-data; name="0"; filename="data.bin"\r\ncontent-type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(graphqlUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + sizeMiB * MiB + tail.length),
          authorization: `Bearer ${token}`,
          'x-graphql-yoga-csrf': '1',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve(graphqlData<{ addJob: { id: string } }>(Buffer.concat(chunks).toString(), query).addJob.id);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    req.on('error', reject);
    void (async () => {
      req.write(head);
      for (let i = 0; i < sizeMiB; i++) {
        if (!req.write(CHUNK)) await new Promise((resolve) => req.once('drain', resolve));
      }
      req.end(tail);
    })();
  });
}

/** A tar with one file of `sizeMiB` MiB, produced as it is read. */
function tarOf(sizeMiB: number): Readable {
  const pack = tar.pack();
  const entry = pack.entry({ name: 'data.bin', size: sizeMiB * MiB, mode: 0o644 });
  void (async () => {
    for (let i = 0; i < sizeMiB; i++) {
      if (!entry.write(CHUNK)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
    }
    entry.end(undefined);
    pack.finalize();
  })();
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}
