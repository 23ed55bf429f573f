// Helpers for build tests: start a build, wait for it to finish, read its whole log.
import { expect } from 'vitest';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { BuildDocument, BuildImageDocument, BuildLogDocument, type BuildImageInput, type BuildFieldsFragment } from '../generated/graphql.ts';
import type { GraphqlClient } from './graphql-client.ts';
import { multipartRequest, type FilePart } from './multipart.ts';

export const FINISHED = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'];

export async function startBuild(client: GraphqlClient, input: BuildImageInput, files: FilePart[] = []): Promise<BuildFieldsFragment> {
  const result = files.length > 0 ? await multipartRequest(client, BuildImageDocument, { input }, files) : await client.request(BuildImageDocument, { input });
  expect(result.errors).toBeUndefined();
  return result.data!.buildImage;
}

export async function waitForBuild(client: GraphqlClient, id: string, states = FINISHED, timeoutMs = 60_000): Promise<BuildFieldsFragment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await client.request(BuildDocument, { id });
    expect(result.errors).toBeUndefined();
    const build = result.data!.build;
    if (states.includes(build.state)) return build;
    if (Date.now() > deadline) throw new Error(`build ${id} is still ${build.state}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function buildLog(client: GraphqlClient, id: string): Promise<{ seq: number; stream: string; text: string }[]> {
  const result = await client.request(BuildLogDocument, { id, afterSeq: 0, first: 5000 });
  expect(result.errors).toBeUndefined();
  return result.data!.build.logLines;
}

/** A tar (gzipped when asked) of the given files, built in memory. */
export async function tarball(files: Record<string, string>, gzip = false): Promise<Uint8Array<ArrayBuffer>> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  const archive = Buffer.concat(chunks);
  return new Uint8Array(gzip ? gzipSync(archive) : archive);
}
