// Build overhead: a small multi-step Dockerfile with one attached file, through buildImage (GraphQL
// multipart) until buildUpdated says SUCCEEDED, against the engine's build API with the same context
// and the same build options (Dockyard's own buildQuery: classic builder, no cache, limits, no network).
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { parseConfig } from '../../src/config.ts';
import { buildQuery } from '../../src/runner/docker/docker-engine.ts';
import { FINISHED_BUILD } from '../lib/dockyard.ts';
import { BENCH_LABEL, docker, runLabel } from '../lib/engine.ts';
import { graphqlData } from '../lib/graphql.ts';
import { alternate, type Scenario } from '../lib/scenario.ts';
import { compareTimes } from '../lib/stats.ts';
import { WsConnection } from '../lib/subscriber.ts';
import { printBreakdown } from '../lib/trace-report.ts';

const TARGET = 1.1;
const DOCKERFILE = `FROM busybox:latest
ENV GREETING=hello
WORKDIR /app
COPY app.sh /app/app.sh
RUN chmod +x /app/app.sh && echo built > /app/built.txt
RUN /app/app.sh > /app/out.txt && cat /app/out.txt
LABEL stage=bench
CMD ["/app/app.sh"]
`;
const APP = '#!/bin/sh\necho "$GREETING from the bench image"\n';

export const buildOverhead: Scenario = {
  name: 'build-overhead',
  target: `≤ ${TARGET.toFixed(2)}× raw`,
  async run(ctx) {
    const rounds = ctx.size(10, 3);
    const server = await ctx.startServer({ BUILD_CONCURRENCY: '1', JOB_CONCURRENCY: '0' });
    const connection = await WsConnection.open(server.wsUrl, ctx.fixture.token);
    const imageName = `build-bench-${Date.now().toString(36)}`;
    let a: number[];
    let b: number[];
    const dockyardWindows: [number, number][] = [];
    const rawWindows: [number, number][] = [];
    try {
      const dockyardRun = async () => {
        const start = Date.now();
        const id = await requestBuild(server.graphqlUrl, ctx.fixture.token, imageName);
        const final = await new Promise<{ state: string; error: string | null; at: number }>((resolve, reject) => {
          const subscription = connection.subscribe('subscription($id: ID!) { buildUpdated(buildId: $id) { state error } }', { id }, (data, arrivedAt) => {
            const build = (data as { buildUpdated: { state: string; error: string | null } }).buildUpdated;
            if (FINISHED_BUILD.includes(build.state)) {
              subscription.stop();
              resolve({ ...build, at: arrivedAt });
            }
          });
          subscription.done.then(() => reject(new Error('buildUpdated completed without a final state')), reject);
        });
        if (final.state !== 'SUCCEEDED') throw new Error(`build ${id} ended ${final.state}: ${final.error}`);
        dockyardWindows.push([start, final.at]);
        return final.at - start;
      };
      let serial = 0;
      const rawRun = async () => {
        const start = Date.now();
        await rawBuild(`dockyard-bench/raw-build:${++serial}`);
        rawWindows.push([start, Date.now()]);
        return Date.now() - start;
      };
      await dockyardRun();
      await rawRun();
      ({ a, b } = await alternate(rounds, dockyardRun, rawRun));
      // The images stay until the end of the run (see removeBenchObjects): deleteImage is not safe on a shared engine.
    } finally {
      connection.close();
      await server.stop();
    }
    if (server.traceFile) await printBreakdown(ctx.log, server.traceFile, dockyardWindows.slice(-rounds), rawWindows.slice(-rounds));
    return {
      ...compareTimes(a, b, TARGET),
      notes: [
        `${rounds} alternating builds each (after one warm-up each) of an 8-step Dockerfile (2 RUN steps, a COPY of an attached file); Dockyard: buildImage multipart request → buildUpdated SUCCEEDED; raw: POST /build with the same tar context and query, until the engine's stream ends.`,
      ],
      data: { rounds, dockyardMs: a, rawMs: b },
    };
  },
};

/** buildImage with the Dockerfile inline and app.sh attached (a GraphQL multipart request); returns the build id. */
async function requestBuild(graphqlUrl: string, token: string, imageName: string): Promise<string> {
  const query = 'mutation($i: BuildImageInput!) { buildImage(input: $i) { id } }';
  const form = new FormData();
  form.set('operations', JSON.stringify({ query, variables: { i: { imageName, dockerfile: DOCKERFILE, files: [null] } } }));
  form.set('map', JSON.stringify({ 0: ['variables.i.files.0'] }));
  form.set('0', new Blob([APP]), 'app.sh');
  const response = await fetch(graphqlUrl, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' }, body: form });
  return graphqlData<{ buildImage: { id: string } }>(await response.text(), query).buildImage.id;
}

async function rawBuild(tag: string): Promise<void> {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile', mode: 0o644, mtime: new Date(0) }, DOCKERFILE);
  pack.entry({ name: 'app.sh', mode: 0o644, mtime: new Date(0) }, APP);
  pack.finalize();
  const settings = parseConfig({}).builds;
  const query = buildQuery({
    context: pack as unknown as NodeJS.ReadableStream,
    dockerfile: 'Dockerfile',
    tags: [tag],
    buildArgs: {},
    labels: {},
    serviceLabels: { [BENCH_LABEL]: runLabel() },
    target: null,
    noCache: true,
    memoryBytes: settings.memoryBytes,
    cpus: settings.cpus,
    network: settings.network,
    signal: new AbortController().signal,
  });
  const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, query as Docker.ImageBuildOptions);
  const messages = await new Promise<{ error?: string; aux?: { ID?: string } }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: unknown[]) => (error ? reject(error) : resolve(output as never))),
  );
  const failed = messages.find((m) => m.error);
  if (failed) throw new Error(`raw build failed: ${failed.error}`);
  if (!messages.some((m) => m.aux?.ID)) throw new Error('raw build reported no image id');
}
