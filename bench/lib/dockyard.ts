// What the scenarios do through Dockyard's GraphQL API: the bench account and its API token, the image
// every job runs in, one-job pipelines, and waiting for a job or build to end (over graphql-ws).
import { randomBytes } from 'node:crypto';
import { Gql } from './graphql.ts';
import type { WsConnection } from './subscriber.ts';

export const FINISHED_JOB = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT', 'SKIPPED'];
export const FINISHED_BUILD = ['SUCCEEDED', 'FAILED', 'ERRORED', 'CANCELED', 'TIMED_OUT'];

export interface Fixture {
  login: string;
  token: string;
  /** The bench image (busybox), built once through Dockyard: its GraphQL id and engine image id. */
  imageId: string;
  dockerImageId: string;
}

/** Registers, confirms and logs in a bench user, makes an API token, and builds the image jobs run in. */
export async function createFixture(graphqlUrl: string, ws: (token: string) => Promise<WsConnection>): Promise<Fixture> {
  const login = `bench-${randomBytes(4).toString('hex')}`;
  const password = 'bench password 1';
  const anonymous = new Gql(graphqlUrl);
  const { register } = await anonymous.request<{ register: { confirmationToken: string } }>(
    'mutation($l: String!, $p: String!, $e: String!) { register(login: $l, password: $p, email: $e) { confirmationToken } }',
    { l: login, p: password, e: `${login}@bench.invalid` },
  );
  await anonymous.request('mutation($l: String!, $t: String!) { confirmAccount(login: $l, token: $t) { confirmed } }', { l: login, t: register.confirmationToken });
  // The session cookie of the login makes the API token; everything after uses the token.
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'mutation($l: String!, $p: String!) { login(login: $l, password: $p) { expiresAt } }', variables: { l: login, p: password } }),
  });
  const cookie = response.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const made = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ query: 'mutation { createApiToken(name: "bench") { token } }' }),
  });
  const token = ((await made.json()) as { data: { createApiToken: { token: string } } }).data.createApiToken.token;

  const gql = new Gql(graphqlUrl, token);
  const connection = await ws(token);
  try {
    const build = await buildAndWait(gql, connection, 'bench', 'FROM busybox:latest\nCMD ["true"]\n');
    if (build.state !== 'SUCCEEDED') throw new Error(`the bench image did not build: ${build.state} ${build.error ?? ''}`);
    const { build: built } = await gql.request<{ build: { image: { id: string; dockerImageId: string } } }>(
      'query($id: ID!) { build(id: $id) { image { id dockerImageId } } }',
      { id: build.id },
    );
    return { login, token, imageId: built.image.id, dockerImageId: built.image.dockerImageId };
  } finally {
    connection.close();
  }
}

/** Queues a build from an inline Dockerfile and waits (buildUpdated) for its final state. */
export async function buildAndWait(gql: Gql, connection: WsConnection, imageName: string, dockerfile: string): Promise<{ id: string; state: string; error: string | null; finishedAt: number }> {
  const { buildImage } = await gql.request<{ buildImage: { id: string } }>(
    'mutation($i: BuildImageInput!) { buildImage(input: $i) { id } }',
    { i: { imageName, dockerfile } },
  );
  const final = await waitFor(connection, 'subscription($id: ID!) { buildUpdated(buildId: $id) { state error } }', { id: buildImage.id }, 'buildUpdated', FINISHED_BUILD);
  return { id: buildImage.id, state: final.value.state, error: final.value.error, finishedAt: final.arrivedAt };
}

/** A pipeline with one job running `command` in the bench image; returns both ids. */
export async function createJob(gql: Gql, imageId: string, command: string[], name = 'bench'): Promise<{ pipelineId: string; jobId: string }> {
  const { createPipeline } = await gql.request<{ createPipeline: { id: string } }>('mutation($n: String!) { createPipeline(name: $n) { id } }', { n: name });
  const { addJob } = await gql.request<{ addJob: { id: string } }>(
    'mutation($i: AddJobInput!) { addJob(input: $i) { id } }',
    { i: { pipelineId: createPipeline.id, imageId, command } },
  );
  return { pipelineId: createPipeline.id, jobId: addJob.id };
}

export async function submit(gql: Gql, pipelineId: string): Promise<void> {
  await gql.request('mutation($id: ID!) { submitPipeline(id: $id) { id } }', { id: pipelineId });
}

/**
 * Follows `jobUpdated` until the job has ended. `ready` resolves once the subscription has answered
 * (it yields the job as it is first), so that a caller can start the job knowing nothing is missed.
 */
export function followJob(connection: WsConnection, jobId: string): { ready: Promise<void>; ended: Promise<{ state: string; arrivedAt: number }> } {
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const ended = waitFor(connection, 'subscription($id: ID!) { jobUpdated(jobId: $id) { state } }', { id: jobId }, 'jobUpdated', FINISHED_JOB, markReady).then(
    ({ value, arrivedAt }) => ({ state: value.state as string, arrivedAt }),
  );
  return { ready, ended };
}

/** Subscribes and resolves with the first result whose `state` is one of `finalStates`. */
function waitFor(
  connection: WsConnection,
  query: string,
  variables: Record<string, unknown>,
  field: string,
  finalStates: string[],
  onFirst: () => void = () => {},
): Promise<{ value: Record<string, any>; arrivedAt: number }> {
  return new Promise((resolve, reject) => {
    let first = true;
    const subscription = connection.subscribe(query, variables, (data: Record<string, Record<string, any>>, arrivedAt) => {
      if (first) {
        first = false;
        onFirst();
      }
      const value = data[field]!;
      if (finalStates.includes(value.state as string)) {
        subscription.stop();
        resolve({ value, arrivedAt });
      }
    });
    subscription.done.then(() => reject(new Error(`${field} completed without a final state`)), reject);
  });
}

/** `sh -c` script that prints `count` lines "<microseconds since the epoch> <i>", one every `intervalUs`. */
export function timestampedLines(count: number, intervalUs: number): string[] {
  // busybox date has no sub-second format; adjtimex reads the kernel clock (the host's) to the microsecond.
  const now = `adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf "%d%06d", s, u}'`;
  return ['sh', '-c', `i=0; while [ $i -lt ${count} ]; do echo "$(${now}) $i"; i=$((i+1)); usleep ${intervalUs}; done`];
}

/** The latency of a timestamped line (see timestampedLines) arriving at `arrivedAt` (ms since the epoch). */
export function lineLatency(text: string, arrivedAt: number): number | null {
  const match = /^(\d{16}) /.exec(text);
  return match ? arrivedAt - Number(match[1]) / 1000 : null;
}
