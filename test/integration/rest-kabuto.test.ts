// Kabuto's REST surface over HTTP, end to end on the real Docker engine, PostgreSQL and Redis: the
// seed's curl flow (run with curl) and its Python flow (run with python3 and requests), JSON bodies,
// Mercurial builds, updates and deletes, kill, a configurable prefix, and the error cases (missing
// fields, wrong login, no session, another user's ids, unknown ids, a failing Dockerfile, a failing
// command, results asked for too early).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CreateApiTokenDocument, MeDocument } from '../generated/graphql.ts';
import { PASSWORD } from '../support/accounts.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { createHgRepo, startHgServer } from '../support/hg-server.ts';
import { startTestServer, uniqueLogin } from '../support/server.ts';

const run = promisify(execFile);
const work = mkdtempSync(path.join(tmpdir(), 'dockyard-rest-kabuto-'));
const server = await startTestServer({
  BUILD_CONCURRENCY: '2',
  JOB_CONCURRENCY: '3',
  JOB_STOP_GRACE_SECONDS: '1',
  SOURCE_ALLOWED_HOSTS: '127.0.0.1',
  DATA_DIR: path.join(work, 'data'),
});
const base = server.url;

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- wire JSON, checked field by field
  response: Response;
}

/** A Kabuto client: form, JSON or multipart bodies, and the cookie that /login sets. */
class Kabuto {
  cookie: string | undefined;
  bearer: string | undefined;
  login = '';

  async call(method: string, urlPath: string, body?: Record<string, string> | FormData | { json: unknown }): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (this.cookie) headers.cookie = this.cookie;
    if (this.bearer) headers.authorization = `Bearer ${this.bearer}`;
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      payload = new URLSearchParams(body as Record<string, string>).toString();
    }
    const response = await fetch(`${base}${urlPath}`, { method, headers, body: payload });
    const setCookie = response.headers.getSetCookie()[0];
    if (setCookie) this.cookie = /max-age=0/i.test(setCookie) ? undefined : setCookie.split(';')[0];
    const type = response.headers.get('content-type') ?? '';
    return { status: response.status, body: type.includes('json') ? await response.json() : await response.arrayBuffer(), response };
  }
  get = (urlPath: string) => this.call('GET', urlPath);
  post = (urlPath: string, body?: Record<string, string> | FormData | { json: unknown }) => this.call('POST', urlPath, body);
  put = (urlPath: string, body?: Record<string, string> | FormData | { json: unknown }) => this.call('PUT', urlPath, body);
  delete = (urlPath: string) => this.call('DELETE', urlPath);
}

/** Registers, confirms and logs in through Kabuto's routes. */
async function kabutoUser(prefix: string): Promise<Kabuto> {
  const client = new Kabuto();
  client.login = uniqueLogin(prefix);
  const registered = await client.post('/register', { login: client.login, password: PASSWORD, email: `${client.login}@example.test` });
  expect(registered.body).toEqual({ status: 'success', token: expect.any(String) });
  expect((await client.get(`/register/confirm/${client.login}/${registered.body.token}`)).body).toEqual({ registration: 'success' });
  expect((await client.post('/login', { login: client.login, password: PASSWORD })).body).toEqual({ login: 'success' });
  return client;
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`still waiting: ${JSON.stringify(value).slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

const buildDone = (client: Kabuto, buildId: number) => until(async () => (await client.get(`/image/build/${buildId}`)).body, (b) => b.state !== 'PENDING');
const jobOf = async (client: Kabuto, pid: number, jid: number) => (await client.get(`/pipeline/${pid}/job/${jid}`)).body[jid];
const jobDone = (client: Kabuto, pid: number, jid: number) => until(() => jobOf(client, pid, jid), (job) => job.state === 'done' || job.state === 'failed');

async function buildImage(client: Kabuto, name: string, dockerfile: string): Promise<number> {
  const started = await client.post('/image', { name, dockerfile });
  expect(started.body).toEqual({ status: 'Your image is being built', build_id: expect.any(Number) });
  const build = await buildDone(client, started.body.build_id);
  expect(build.state).toBe('SUCCESS');
  return build.id;
}

function unzip(bytes: ArrayBuffer): Record<string, string> {
  const file = path.join(mkdtempSync(path.join(work, 'zip-')), 'results.zip');
  writeFileSync(file, new Uint8Array(bytes));
  const script = 'import json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({n: z.read(n).decode() for n in z.namelist()}))';
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' })) as Record<string, string>;
}

const alice = await kabutoUser('alice');
const bob = await kabutoUser('bob');
const worker = await buildImage(alice, 'worker', 'FROM busybox\nCMD ["sh"]\n');

describe("the seed's curl flow, run with curl", () => {
  it('registers, confirms, logs in with a cookie jar, builds with an attachment, runs a job with two attachments, reads logs and results', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(path.join(work, 'curl-'));
    const jar = path.join(dir, 'cookies.txt');
    const login = uniqueLogin('curl');
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY greeting.txt /\nCMD ["cat", "/greeting.txt"]\n');
    writeFileSync(path.join(dir, 'greeting.txt'), 'hello from curl\n');
    writeFileSync(path.join(dir, 'file1'), 'first file\n');
    writeFileSync(path.join(dir, 'file2'), 'second file\n');
    const curl = async (...args: string[]) => JSON.parse((await run('curl', ['-s', ...args], { cwd: dir })).stdout);

    const { token } = await curl(`${base}/register`, '-X', 'POST', '-d', `login=${login}&password=${PASSWORD}&email=${login}@test.com`);
    expect(await curl(`${base}/register/confirm/${login}/${token}`)).toEqual({ registration: 'success' });
    expect(await curl(`${base}/login`, '-X', 'POST', '-d', `login=${login}&password=${PASSWORD}`, '-c', jar)).toEqual({ login: 'success' });
    expect(readFileSync(jar, 'utf8')).toMatch(/dockyard_session/);

    // The Dockerfile as a form field read from a file (-F "dockerfile=<file"), its attachment as a file part.
    const started = await curl(`${base}/image`, '-X', 'POST', '-F', 'name=test', '-F', 'dockerfile=<Dockerfile', '-F', 'attachments=@greeting.txt', '-F', 'nocache=false', '-b', jar);
    expect(started).toEqual({ status: 'Your image is being built', build_id: expect.any(Number) });
    const build = await until(() => curl(`${base}/image/build/${started.build_id}`, '-b', jar), (b) => b.state !== 'PENDING');
    expect(build).toEqual({ state: 'SUCCESS', id: expect.any(Number), output: expect.stringContaining('Successfully built') });
    const image = await curl(`${base}/image/${build.id}`, '-b', jar);
    expect(image).toEqual({ [build.id]: { id: build.id, name: 'test', dockerfile: readFileSync(path.join(dir, 'Dockerfile'), 'utf8'), creation_date: new Date().toISOString().slice(0, 10) } });

    const { id: pipelineId } = await curl(`${base}/pipeline`, '-X', 'POST', '-d', 'name=my_first_pipeline', '-b', jar);
    // The seed's order: the attachments before image_id and command.
    const command = "sh -c 'cat /inbox/file1 /inbox/file2 && cat /greeting.txt > /outbox/greeting.txt && mkdir /outbox/sub && wc -c < /inbox/file2 > /outbox/sub/size'";
    const { id: jobId } = await curl(`${base}/pipeline/${pipelineId}/job`, '-X', 'POST', '-F', 'attachments=@file1', '-F', 'attachments=@file2', '-F', `image_id=${build.id}`, '-F', `command=${command}`, '-b', jar);
    expect(await curl(`${base}/pipeline/${pipelineId}`, '-b', jar)).toEqual({
      [pipelineId]: { id: pipelineId, name: 'my_first_pipeline', creation_date: expect.stringMatching(/^\d{4}-\d\d-\d\d$/), jobs: [{ id: jobId }] },
    });
    expect((await curl(`${base}/pipeline/${pipelineId}/job/${jobId}`, '-b', jar))[jobId]).toEqual({
      id: jobId, command, state: 'ready', creation_date: expect.stringMatching(/^\d{4}-\d\d-\d\d$/), response: null, used_cpu: 0, used_memory: 0, used_io: 0,
      attachment_token: null, results_path: null, image: { id: build.id }, pipeline: { id: pipelineId },
    });

    expect(await curl(`${base}/pipeline/${pipelineId}/submit`, '-X', 'POST', '-b', jar)).toEqual({ [jobId]: expect.stringMatching(/^(in_queue|running)$/) });
    const job = await until(async () => (await curl(`${base}/pipeline/${pipelineId}/job/${jobId}`, '-b', jar))[jobId], (j) => j.state === 'done' || j.state === 'failed');
    expect(job).toMatchObject({ state: 'done', response: 0 });
    expect(job.used_memory).toBeGreaterThanOrEqual(0);

    const logs = await curl(`${base}/execution/${jobId}/logs`, '-b', jar);
    expect(logs).toEqual([
      { id: 1, job: jobId, logline: 'first file' },
      { id: 2, job: jobId, logline: 'second file' },
    ]);
    expect(await curl(`${base}/execution/${jobId}/logs/1`, '-b', jar)).toEqual([{ id: 2, job: jobId, logline: 'second file' }]);
    expect(await curl(`${base}/execution/${jobId}/logs/2`, '-b', jar)).toEqual([]);

    await run('curl', ['-s', '-o', 'results.zip', '-D', 'headers.txt', `${base}/pipeline/${pipelineId}/job/${jobId}?result`, '-b', jar], { cwd: dir });
    expect(readFileSync(path.join(dir, 'headers.txt'), 'utf8')).toMatch(/content-type: application\/zip[\s\S]*content-disposition: attachment; filename=results\.zip/i);
    expect(unzip(readFileSync(path.join(dir, 'results.zip')).buffer as ArrayBuffer)).toEqual({ 'greeting.txt': 'hello from curl\n', 'sub/size': '12\n' });

    expect(await curl(`${base}/logout`, '-X', 'POST', '-b', jar, '-c', jar)).toEqual({ logout: 'success' });
    expect(await curl(`${base}/image/${build.id}`, '-b', jar)).toEqual({ status: 401, message: 'Unauthorized' });
  });
});

describe("the seed's Python flow, run with requests", () => {
  it('follows every Python example of the seed, one after another', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(path.join(work, 'python-'));
    writeFileSync(path.join(dir, 'file1'), 'one\n');
    writeFileSync(path.join(dir, 'file2'), 'two\n');
    const script = String.raw`
import io, json, sys, time, zipfile
import requests
base_url, login, password, folder = sys.argv[1:5]
out = {}
r = requests.post('%s/register' % base_url, data={'login': login,
'password': password,
'email': login + '@test.com'})
token = r.json()['token']
r = requests.get('%s/register/confirm/%s/%s' % (base_url, login, token))
out['confirm'] = r.json()

r = requests.post('%s/login' % base_url, data={'login': login,
'password': password})
c = r.cookies

sample_dockerfile = '''FROM busybox
CMD ["echo", "hello world"]
'''
r = requests.post('%s/image' % base_url,
data={'dockerfile': sample_dockerfile,
'name': 'test'},
cookies=c)
build_id = r.json()['build_id']
while True:
    r = requests.get('%s/image/build/%s' % (base_url, build_id),
    cookies=c)
    state = r.json()['state']
    if state != 'PENDING':
        break
    time.sleep(0.2)
out['build_state'] = state
image_id = r.json()['id']
out['image'] = requests.get('%s/image/%s' % (base_url, image_id), cookies=c).json()

r = requests.post('%s/pipeline' % base_url,
data={'name': 'my first pipeline'},
cookies=c)
pipeline_id = r.json()['id']

data = {'command': 'echo hello world',
'image_id': image_id}
files = [("attachments", open(folder + "/file1", "rb")),
("attachments", open(folder + "/file2", "rb"))]
r = requests.post('%s/pipeline/%s/job' % (base_url, pipeline_id),
data=data,
files=files,
cookies=c)
job_id = r.json()['id']

r = requests.post('%s/pipeline/%s/submit' % (base_url, pipeline_id),
cookies=c)
out['submitted'] = []
for eid, state in r.json().items():
    out['submitted'].append("id: %s - state(%s)" % (eid, state))

while True:
    job = requests.get('%s/pipeline/%s/job/%s' % (base_url, pipeline_id, job_id), cookies=c).json()[str(job_id)]
    if job['state'] in ('done', 'failed'):
        break
    time.sleep(0.2)
out['job'] = job
logs = requests.get('%s/execution/%s/logs' % (base_url, job_id), cookies=c).json()
out['logs'] = logs
out['logs_after'] = requests.get('%s/execution/%s/logs/%s' % (base_url, job_id, logs[-1]['id']), cookies=c).json()
r = requests.get('%s/pipeline/%s/job/%s?result' % (base_url, pipeline_id, job_id), cookies=c)
out['result_type'] = r.headers['Content-Type']
out['result_names'] = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
out['ids'] = [pipeline_id, job_id, image_id]
print(json.dumps(out))
`;
    const login = uniqueLogin('py');
    const { stdout } = await run('python3', ['-c', script, base, login, PASSWORD, dir], { timeout: 110_000 });
    const out = JSON.parse(stdout);
    const [pipelineId, jobId, imageId] = out.ids;
    expect(out.confirm).toEqual({ registration: 'success' });
    expect(out.build_state).toBe('SUCCESS');
    expect(out.image).toEqual({ [imageId]: { id: imageId, name: 'test', dockerfile: 'FROM busybox\nCMD ["echo", "hello world"]\n', creation_date: expect.any(String) } });
    expect(out.submitted).toEqual([expect.stringMatching(new RegExp(`^id: ${jobId} - state\\((in_queue|running)\\)$`))]);
    expect(out.job).toMatchObject({ id: jobId, command: 'echo hello world', state: 'done', response: 0, pipeline: { id: pipelineId }, image: { id: imageId } });
    expect(out.logs).toEqual([{ id: 1, job: jobId, logline: 'hello world' }]);
    expect(out.logs_after).toEqual([]);
    expect(out.result_type).toBe('application/zip');
    expect(out.result_names).toEqual([]); // the command wrote nothing to /outbox: a valid, empty zip
  });
});

describe('bodies', () => {
  it('takes JSON bodies and the query string as well as forms', { timeout: 60_000 }, async () => {
    const client = new Kabuto();
    const login = uniqueLogin('json');
    const { body } = await client.post('/register', { json: { login, password: PASSWORD, email: `${login}@test.com` } });
    await client.get(`/register/confirm/${login}/${body.token}`);
    expect((await client.post(`/login?login=${login}`, { json: { password: PASSWORD } })).body).toEqual({ login: 'success' });
    const started = await client.post('/image', { json: { name: 'from-json', dockerfile: 'FROM busybox\n', nocache: true } });
    expect((await buildDone(client, started.body.build_id)).state).toBe('SUCCESS');
    const pipeline = await client.post('/pipeline', { json: { name: 'json pipeline' } });
    expect(pipeline.body).toEqual({ id: expect.any(Number) });
    // The session works on GraphQL too: one login for both surfaces.
    const graphql = new GraphqlClient(server.graphqlUrl);
    graphql.cookies.set(client.cookie!.split('=')[0]!, client.cookie!.slice(client.cookie!.indexOf('=') + 1));
    expect((await graphql.request(MeDocument)).data!.me!.login).toBe(login);
  });

  it('accepts an API token instead of the session cookie', async () => {
    const graphql = new GraphqlClient(server.graphqlUrl);
    graphql.cookies.set(alice.cookie!.split('=')[0]!, alice.cookie!.slice(alice.cookie!.indexOf('=') + 1));
    const { token } = (await graphql.request(CreateApiTokenDocument, { name: 'kabuto' })).data!.createApiToken;
    const scripted = new Kabuto();
    scripted.bearer = token;
    expect(Object.keys((await scripted.get('/image')).body)).toContain(String(worker));
  });
});

describe('images', () => {
  it('builds from a Mercurial repo_url, which wins over dockerfile', { timeout: 90_000 }, async () => {
    const repoDir = path.join(mkdtempSync(path.join(work, 'hg-')), 'repo');
    await createHgRepo(repoDir, { commits: [{ files: { Dockerfile: 'FROM busybox\nRUN echo built from mercurial\n' } }] });
    const hg = await startHgServer(repoDir);
    onTestFinished(() => hg.close());
    const started = await alice.post('/image', { name: 'from-hg', repo_url: hg.url, dockerfile: 'FROM busybox\nRUN echo ignored\n', nocache: 'true' });
    const build = await buildDone(alice, started.body.build_id);
    expect(build).toMatchObject({ state: 'SUCCESS', output: expect.stringContaining('built from mercurial') });
    expect(build.output).not.toContain('ignored');
  });

  it('maps names onto Dockyard names: lower-cased; one Dockyard refuses is a 400', async () => {
    const refused = await alice.post('/image', { name: 'not a name!', dockerfile: 'FROM busybox\n' });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/^"not a name!" cannot be an image name: An image name has lower-case letters/);
    const upper = await buildImage(alice, 'Mixed-Case', 'FROM busybox\n');
    expect((await alice.get(`/image/${upper}`)).body[upper].name).toBe('mixed-case');
    expect(await buildImage(alice, 'mixed-case', 'FROM busybox\nCMD ["true"]\n')).toBe(upper); // the same name builds the same image again
  });

  it('a failing Dockerfile ends FAILED with its error and output', { timeout: 60_000 }, async () => {
    const started = await alice.post('/image', { name: 'broken', dockerfile: 'FROM busybox\nRUN echo about to fail && exit 3\n' });
    const build = await buildDone(alice, started.body.build_id);
    expect(build).toEqual({ state: 'FAILED', error: expect.stringMatching(/non-zero code: 3/), output: expect.stringContaining('about to fail') });
  });

  it('PUT builds the image again (no renaming); DELETE removes it', { timeout: 90_000 }, async () => {
    const id = await buildImage(alice, 'changing', 'FROM busybox\nCMD ["echo", "one"]\n');
    const rebuilt = await alice.put(`/image/${id}`, { name: 'changing', dockerfile: 'FROM busybox\nCMD ["echo", "two"]\n' });
    expect(rebuilt.body).toEqual({ status: 'Your image is being built', build_id: expect.any(Number) });
    expect(await buildDone(alice, rebuilt.body.build_id)).toMatchObject({ state: 'SUCCESS', id });
    expect((await alice.get(`/image/${id}`)).body[id].dockerfile).toBe('FROM busybox\nCMD ["echo", "two"]\n');
    expect((await alice.get(`/image/build/${rebuilt.body.build_id}/${id}`)).body.state).toBe('SUCCESS');
    expect((await alice.get(`/image/build/${rebuilt.body.build_id}/${worker}`)).body).toEqual({ error: `could not find image with id ${worker}` });
    expect((await alice.put(`/image/${id}`, { name: 'renamed', dockerfile: 'FROM busybox\n' })).body).toEqual({ error: expect.stringMatching(/cannot be renamed/) });

    expect((await alice.delete(`/image/${id}`)).body).toEqual({ status: 'Successfully deleted the image' });
    expect((await alice.get(`/image/${id}`)).body).toEqual({});
    expect((await alice.delete(`/image/${id}`)).body).toEqual({ error: "You either don't have the rights to update this image, or it does not exist" });
    expect(Object.keys((await alice.get('/image')).body)).not.toContain(String(id));
  });
});

describe('pipelines and jobs', () => {
  async function pipelineWith(client: Kabuto, ...commands: string[]): Promise<{ pid: number; jids: number[] }> {
    const pid = (await client.post('/pipeline', { name: `p ${commands.length}` })).body.id as number;
    const jids: number[] = [];
    for (const command of commands) jids.push((await client.post(`/pipeline/${pid}/job`, { image_id: String(worker), command })).body.id);
    return { pid, jids };
  }

  it('a job whose command fails ends failed with its exit code; the next one still runs; no results', { timeout: 90_000 }, async () => {
    const { pid, jids } = await pipelineWith(alice, 'sh -c "echo failing && exit 7"', 'echo after');
    await alice.post(`/pipeline/${pid}/submit`);
    const failed = await jobDone(alice, pid, jids[0]!);
    expect(failed).toMatchObject({ state: 'failed', response: 7 });
    expect((await alice.get(`/execution/${jids[0]}/logs`)).body.map((l: { logline: string }) => l.logline)).toContain('failing');
    expect((await alice.get(`/pipeline/${pid}/job/${jids[0]}?result`)).body).toEqual({ error: 'Job has not finished running, or has failed' });
    expect(await jobDone(alice, pid, jids[1]!)).toMatchObject({ state: 'done', response: 0 });
  });

  it('refuses results before the job ended, and kills a running job (a GET, as in Kabuto)', { timeout: 90_000 }, async () => {
    const { pid, jids } = await pipelineWith(alice, 'sh -c "echo started && sleep 60"');
    const jid = jids[0]!;
    expect((await alice.get(`/pipeline/${pid}/job/${jid}?result`)).body).toEqual({ error: 'Job has not finished running, or has failed' });
    expect((await alice.get(`/pipeline/${pid}/job/${jid}/kill`)).body).toEqual({ error: 'Cannot kill a job that is not running' });
    await alice.post(`/pipeline/${pid}/submit`);
    await until(() => jobOf(alice, pid, jid), (job) => job.state === 'running');
    await until(async () => (await alice.get(`/execution/${jid}/logs`)).body, (lines) => lines.length > 0);
    expect((await alice.get(`/pipeline/${pid}/job/${jid}?result`)).body).toEqual({ error: 'Job has not finished running, or has failed' });
    expect((await alice.post(`/pipeline/${pid}/submit`)).body).toEqual({ error: expect.stringMatching(/running/) });
    expect((await alice.delete(`/pipeline/${pid}/job/${jid}`)).body).toEqual({ error: expect.stringMatching(/running/) });
    expect((await alice.get(`/pipeline/${pid}/job/${jid}/kill`)).body).toEqual({ message: 'Success' });
    expect(await jobDone(alice, pid, jid)).toMatchObject({ state: 'failed' });
    // Logs stay readable after the run, from a line on.
    expect((await alice.get(`/execution/${jid}/logs/0`)).body[0]).toEqual({ id: 1, job: jid, logline: 'started' });
  });

  it('PUT renames, rearranges and removes jobs; PUT on a job replaces it; DELETE removes jobs and pipelines', { timeout: 90_000 }, async () => {
    const { pid, jids } = await pipelineWith(alice, 'echo a', 'echo b', 'echo c');
    const [a, b, c] = jids as [number, number, number];
    expect((await alice.put(`/pipeline/${pid}`, { name: 'renamed', rearrange_jobs: `${c},${a},${b}` })).body).toEqual({
      name: 'Successfully updated name',
      rearrange_jobs: 'Successfully removed jobs', // sic, Kabuto's text
    });
    expect((await alice.get(`/pipeline/${pid}`)).body[pid]).toMatchObject({ name: 'renamed', jobs: [{ id: c }, { id: a }, { id: b }] });
    expect((await alice.put(`/pipeline/${pid}`, { rearrange_jobs: `${a},${b}` })).body).toEqual({
      rearrange_jobs: `Could not rearrange jobs. rearrange ids are [${a}, ${b}] while current ids are [${c}, ${a}, ${b}]`,
    });
    expect((await alice.put(`/pipeline/${pid}`, { remove_jobs: String(c) })).body).toEqual({ remove_jobs: 'Successfully removed jobs' });
    expect((await alice.get(`/pipeline/${pid}`)).body[pid].jobs).toEqual([{ id: a }, { id: b }]);

    // A job is changed in place: same id, same place, its attachments kept unless a new file has the same name.
    const withFile = new FormData();
    withFile.append('attachments', new Blob(['kept\n']), 'kept.txt');
    withFile.append('attachments', new Blob(['old\n']), 'changed.txt');
    withFile.append('image_id', String(worker));
    withFile.append('command', 'cat /inbox/kept.txt /inbox/changed.txt');
    const d = (await alice.post(`/pipeline/${pid}/job`, withFile)).body.id as number;
    const update = new FormData();
    update.append('attachments', new Blob(['new\n']), 'changed.txt');
    update.append('attachments', new Blob(['added\n']), 'added.txt');
    update.append('command', 'cat /inbox/kept.txt /inbox/changed.txt /inbox/added.txt');
    const replaced = (await alice.put(`/pipeline/${pid}/job/${d}`, update)).body.id as number;
    expect(replaced).toBe(d);
    expect((await alice.get(`/pipeline/${pid}`)).body[pid].jobs).toEqual([{ id: a }, { id: b }, { id: d }]);
    await alice.post(`/pipeline/${pid}/submit`);
    expect(await jobDone(alice, pid, replaced)).toMatchObject({ state: 'done', command: 'cat /inbox/kept.txt /inbox/changed.txt /inbox/added.txt' });
    expect((await alice.get(`/execution/${replaced}/logs`)).body.map((l: { logline: string }) => l.logline)).toEqual(['kept', 'new', 'added']);
    await until(async () => (await alice.post(`/pipeline/${pid}/submit`)).body, (body) => !('error' in body)); // the run is over
    await until(() => jobOf(alice, pid, replaced), (job) => job.state === 'done');

    expect(Object.keys((await alice.get(`/pipeline/${pid}/job`)).body).map(Number).sort()).toEqual([a, b, replaced].sort());
    expect(Object.keys((await alice.get('/jobs')).body)).toEqual(expect.arrayContaining([String(a), String(b), String(replaced)]));
    expect((await alice.delete(`/pipeline/${pid}/job/${a}`)).body).toEqual({ message: 'Successfully deleted job' });
    expect((await alice.get(`/pipeline/${pid}/job/${a}`)).body).toEqual({});
    expect((await alice.delete(`/pipeline/${pid}`)).body).toEqual({ status: 'Successfully deleted the pipeline' });
    expect((await alice.get(`/pipeline/${pid}`)).body).toEqual({});
    expect((await alice.get(`/pipeline/${pid}/job/${b}`)).body).toEqual({});
  });

  it('submits an empty pipeline as {}; a job only through its own pipeline', async () => {
    const empty = (await alice.post('/pipeline', { name: 'empty' })).body.id;
    expect((await alice.post(`/pipeline/${empty}/submit`)).body).toEqual({});
    const { pid, jids } = await pipelineWith(alice, 'true');
    expect((await alice.get(`/pipeline/${empty}/job/${jids[0]}`)).body).toEqual({});
    expect((await alice.get(`/pipeline/${pid}/job/${jids[0]}`)).body[jids[0]!].state).toBe('ready');
  });

  it('an image used by a job cannot be deleted', { timeout: 60_000 }, async () => {
    const used = await buildImage(alice, 'in-use', 'FROM busybox\n');
    const pid = (await alice.post('/pipeline', { name: 'uses an image' })).body.id;
    await alice.post(`/pipeline/${pid}/job`, { image_id: String(used), command: 'true' });
    const refused = await alice.delete(`/image/${used}`);
    expect(refused.status).toBe(200);
    expect(refused.body).toEqual({ error: 'Jobs use this image; remove them (or their pipelines) first.' });
  });
});

describe('errors', () => {
  const missing = (field: string) => ({ message: `[${field}]: Missing required parameter in the JSON body or the post body or the query string` });

  it('400 for a missing field, empty strings count as present', async () => {
    const anonymous = new Kabuto();
    const cases: [Kabuto, string, Record<string, string>, string][] = [
      [anonymous, '/register', { login: 'x', password: PASSWORD }, 'email'],
      [anonymous, '/login', { login: 'x' }, 'password'],
      [anonymous, '/login', {}, 'login'],
      [alice, '/image', { dockerfile: 'FROM busybox\n' }, 'name'],
      [alice, '/pipeline', {}, 'name'],
    ];
    for (const [client, url, body, field] of cases) {
      const answer = await client.post(url, body);
      expect([url, answer.status, answer.body]).toEqual([url, 400, missing(field)]);
    }
    const pid = (await alice.post('/pipeline', { name: 'for missing fields' })).body.id;
    expect((await alice.post(`/pipeline/${pid}/job`, { image_id: String(worker) })).body).toEqual(missing('command'));
    expect((await alice.post(`/pipeline/${pid}/job`, { command: 'true' })).body).toEqual(missing('image_id'));
    expect((await alice.post('/image', { name: 'no-source' })).body.message).toMatch(/^\[dockerfile\]: Give a dockerfile/);
    // Present but empty: the service decides.
    expect((await alice.post(`/pipeline/${pid}/job`, { image_id: String(worker), command: '' })).body).toEqual({ message: 'The command is empty.' });
  });

  it('registration keeps the password policy and refuses a taken login with 409', async () => {
    const login = uniqueLogin('policy');
    const weak = await new Kabuto().post('/register', { login, password: 'SecreT', email: `${login}@test.com` });
    expect([weak.status, weak.body.message]).toEqual([400, expect.stringMatching(/at least 8 characters/)]);
    const taken = await new Kabuto().post('/register', { login: alice.login, password: PASSWORD, email: `other-${login}@test.com` });
    expect([taken.status, taken.body]).toEqual([409, { message: 'That login is already registered.' }]);
    expect((await new Kabuto().get(`/register/confirm/${alice.login}/not-the-token`)).body).toEqual({ registration: 'user or token not found' });
  });

  it('401 for a wrong password, an unknown login and an unconfirmed account', async () => {
    const login = uniqueLogin('unconfirmed');
    await new Kabuto().post('/register', { login, password: PASSWORD, email: `${login}@test.com` });
    for (const [name, password] of [[alice.login, 'wrong password'], ['nobody-at-all', PASSWORD], [login, PASSWORD]] as const) {
      const client = new Kabuto();
      const answer = await client.post('/login', { login: name, password });
      expect(answer.status).toBe(401);
      expect(answer.response.headers.get('www-authenticate')).toBe('Basic realm="flask-restful"');
      expect(client.cookie).toBeUndefined();
    }
  });

  it('a page of another origin can neither log in nor use the session cookie', async () => {
    const headers = { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' };
    const login = await fetch(`${base}/login`, { method: 'POST', headers, body: new URLSearchParams({ login: alice.login, password: PASSWORD }) });
    expect(login.status).toBe(401);
    expect(login.headers.getSetCookie()).toEqual([]);
    const riding = await fetch(`${base}/pipeline`, { method: 'POST', headers: { ...headers, cookie: alice.cookie! }, body: new URLSearchParams({ name: 'csrf' }) });
    expect(riding.status).toBe(401);
  });

  it('401 on every protected route without a session (or with an ended one)', async () => {
    const routes: [string, string][] = [
      ['GET', '/image'], ['POST', '/image'], ['GET', '/image/1'], ['PUT', '/image/1'], ['DELETE', '/image/1'], ['GET', '/image/build/1'],
      ['GET', '/pipeline'], ['POST', '/pipeline'], ['GET', '/pipeline/1'], ['PUT', '/pipeline/1'], ['DELETE', '/pipeline/1'], ['POST', '/pipeline/1/submit'],
      ['GET', '/jobs'], ['GET', '/pipeline/1/job'], ['POST', '/pipeline/1/job'], ['GET', '/pipeline/1/job/1'], ['PUT', '/pipeline/1/job/1'],
      ['DELETE', '/pipeline/1/job/1'], ['GET', '/pipeline/1/job/1/kill'], ['GET', '/execution/1/logs'], ['GET', '/execution/1/logs/1'], ['POST', '/logout'],
    ];
    const ended = await kabutoUser('ended');
    const cookie = ended.cookie;
    await ended.post('/logout');
    ended.cookie = cookie; // the old cookie, replayed
    for (const client of [new Kabuto(), ended]) {
      for (const [method, url] of routes) {
        const answer = await client.call(method, url, method === 'GET' ? undefined : { name: 'x' });
        expect([method, url, answer.status, answer.body]).toEqual([method, url, 401, { status: 401, message: 'Unauthorized' }]);
      }
    }
  });

  it("another user's ids read like unknown ones", { timeout: 60_000 }, async () => {
    const pid = (await alice.post('/pipeline', { name: 'private' })).body.id as number;
    const jid = (await alice.post(`/pipeline/${pid}/job`, { image_id: String(worker), command: 'echo private' })).body.id as number;
    const build = (await alice.post('/image', { name: 'private-build', dockerfile: 'FROM busybox\n' })).body.build_id as number;
    const bobsPipeline = (await bob.post('/pipeline', { name: 'mine' })).body.id as number;
    for (const [owner, image, pipeline, job, buildId] of [[bob, worker, pid, jid, build], [alice, 999999, 999999, 999999, 999999]] as const) {
      const who = owner === bob ? "another user's" : 'unknown';
      const check = async (answer: Promise<Answer>, expected: unknown) => expect([who, (await answer).body]).toEqual([who, expected]);
      await check(owner.get(`/image/${image}`), {});
      await check(owner.put(`/image/${image}`, { name: 'worker', dockerfile: 'FROM busybox\n' }), { error: "You either don't have the rights to update this image, or it does not exist" });
      await check(owner.delete(`/image/${image}`), { error: "You either don't have the rights to update this image, or it does not exist" });
      await check(owner.get(`/image/build/${buildId}`), { state: 'FAILURE', error: 'No such build.', output: '' });
      await check(owner.get(`/pipeline/${pipeline}`), {});
      await check(owner.put(`/pipeline/${pipeline}`, { name: 'mine now' }), { error: "You either don't have the rights to update this image, or it does not exist" });
      await check(owner.delete(`/pipeline/${pipeline}`), { error: "You either don't have the rights to update this pipeline, or it does not exist" });
      await check(owner.post(`/pipeline/${pipeline}/submit`), { error: 'Pipeline not found' });
      await check(owner.get(`/pipeline/${pipeline}/job`), {});
      await check(owner.post(`/pipeline/${pipeline}/job`, { image_id: String(worker), command: 'true' }), { error: 'Pipeline not found' });
      await check(owner.get(`/pipeline/${pipeline}/job/${job}`), {});
      await check(owner.get(`/pipeline/${pipeline}/job/${job}?result`), { error: 'Job not found' });
      await check(owner.put(`/pipeline/${pipeline}/job/${job}`, { command: 'true' }), { error: "You either don't have the rights to update this job, or it does not exist" });
      await check(owner.delete(`/pipeline/${pipeline}/job/${job}`), { error: "You either don't have the rights to update this job, or it does not exist" });
      await check(owner.get(`/pipeline/${pipeline}/job/${job}/kill`), { error: "You either don't have the rights to update this job, or it does not exist" });
      await check(owner.get(`/execution/${job}/logs`), []);
      await check(owner.get(`/execution/${job}/logs/0`), []);
    }
    expect((await bob.post(`/pipeline/${bobsPipeline}/job`, { image_id: String(worker), command: 'true' })).body).toEqual({ error: 'Image not found' });
    expect(Object.keys((await bob.get('/image')).body)).toEqual([]);
    expect(Object.keys((await bob.get('/jobs')).body)).toEqual([]);
    expect((await alice.get(`/pipeline/${pid}`)).body[pid].name).toBe('private');
    await buildDone(alice, build);
  });

  it('ids are integers; other paths and methods are not Kabuto routes', async () => {
    expect((await alice.get('/image/abc')).status).toBe(404);
    expect((await alice.call('PATCH', '/image')).status).toBe(405);
    expect((await alice.get('/nothing-here')).status).toBe(404);
  });
});

describe('prefix and limits', () => {
  it('refuses an upload over UPLOAD_MAX_MB with 413', { timeout: 60_000 }, async () => {
    const small = await startTestServer({ UPLOAD_MAX_MB: '1', BUILD_CONCURRENCY: '1', DATA_DIR: mkdtempSync(path.join(work, 'small-')) });
    const login = uniqueLogin('small');
    const post = (url: string, body: URLSearchParams | FormData, cookie?: string) => fetch(`${small.url}${url}`, { method: 'POST', headers: cookie ? { cookie } : {}, body });
    const { token } = (await (await post('/register', new URLSearchParams({ login, password: PASSWORD, email: `${login}@test.com` }))).json()) as { token: string };
    await fetch(`${small.url}/register/confirm/${login}/${token}`);
    const cookie = (await post('/login', new URLSearchParams({ login, password: PASSWORD }))).headers.getSetCookie()[0]!.split(';')[0]!;
    const form = new FormData();
    form.append('name', 'big');
    form.append('dockerfile', 'FROM busybox\nCOPY big.bin /\n');
    form.append('attachments', new Blob([new Uint8Array(2 * 1024 * 1024)]), 'big.bin');
    const answer = await post('/image', form, cookie);
    expect(answer.status).toBe(413);
    expect(await answer.json()).toEqual({ message: expect.stringMatching(/"big.bin" is larger than 1048576 bytes/) });
  });

  it('serves the routes under KABUTO_PREFIX, and nothing at the root', async () => {
    const prefixed = await startTestServer({ KABUTO_PREFIX: '/kabuto' });
    const login = uniqueLogin('prefix');
    const post = (url: string, body: Record<string, string>, cookie?: string) =>
      fetch(`${prefixed.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, body: new URLSearchParams(body) });
    const { token } = (await (await post('/kabuto/register', { login, password: PASSWORD, email: `${login}@test.com` })).json()) as { token: string };
    expect(await (await fetch(`${prefixed.url}/kabuto/register/confirm/${login}/${token}`)).json()).toEqual({ registration: 'success' });
    const cookie = (await post('/kabuto/login', { login, password: PASSWORD })).headers.getSetCookie()[0]!.split(';')[0]!;
    expect(await (await fetch(`${prefixed.url}/kabuto/`, { headers: { cookie } })).json()).toEqual({ hello: 'world' });
    expect(await (await post('/kabuto/pipeline', { name: 'prefixed' }, cookie)).json()).toEqual({ id: expect.any(Number) });
    expect((await post('/pipeline', { name: 'at the root' }, cookie)).status).toBe(404);
    expect((await fetch(`${prefixed.url}/kabuto`)).status).toBe(401);
  });
});
