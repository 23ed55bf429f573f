// A loopback Mercurial server for tests: `hg serve` on one repository, on a port the OS picks, ready
// once it answers. createHgRepo builds the repository from a spec (commits, a named branch, a tag).
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type RepoCommit, writeFiles } from './git-server.ts';

const run = promisify(execFile);

export interface HgRepoSpec {
  /** Commits on the default branch, oldest first. */
  commits: RepoCommit[];
  /** A named branch forked from the last default-branch commit. */
  branch?: { name: string; commits: RepoCommit[] };
  /** A tag on one of `commits` (by index; default the first). Tagging adds a commit to default. */
  tag?: { name: string; commit?: number };
}

export interface CreatedHgRepo {
  commits: string[];
  branchCommits: string[];
  /** What `default` points at in the end (the tagging commit when there is a tag). */
  defaultHead: string;
}

export interface HgServer {
  url: string;
  close(): Promise<void>;
}

function hgEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, HGRCPATH: '/dev/null', HGPLAIN: '1', HGUSER: 'Test <test@example.com>' };
}

/** Creates the repository `dir` (which must not exist) from `spec`. */
export async function createHgRepo(dir: string, spec: HgRepoSpec): Promise<CreatedHgRepo> {
  const env = hgEnv(path.dirname(dir));
  const hg = async (...args: string[]) => (await run('hg', args, { cwd: dir, env })).stdout.trim();
  await run('hg', ['init', dir], { env });
  const commits = await commitAll(dir, hg, spec.commits);
  const branchCommits: string[] = [];
  if (spec.branch) {
    await hg('branch', '-q', spec.branch.name);
    branchCommits.push(...(await commitAll(dir, hg, spec.branch.commits)));
    await hg('update', '-q', 'default');
  }
  if (spec.tag) await hg('tag', '-d', '0 0', '-r', commits[spec.tag.commit ?? 0] ?? 'tip', spec.tag.name);
  const defaultHead = await hg('log', '-r', 'default', '--template', '{node}');
  return { commits, branchCommits, defaultHead };
}

async function commitAll(dir: string, hg: (...args: string[]) => Promise<string>, commits: RepoCommit[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [index, commit] of commits.entries()) {
    await writeFiles(dir, commit.files);
    await hg('addremove', '-q');
    await hg('commit', '-d', '0 0', '-m', commit.message ?? `commit ${index + 1}`);
    ids.push(await hg('log', '-r', '.', '--template', '{node}'));
  }
  return ids;
}

/** Serves `repoDir` with `hg serve` on 127.0.0.1 and waits until it answers. */
export async function startHgServer(repoDir: string): Promise<HgServer> {
  const home = await mkdtemp(path.join(tmpdir(), 'hg-home-'));
  const child = spawn('hg', ['serve', '-R', repoDir, '-p', '0', '--address', '127.0.0.1'], {
    env: hgEnv(home),
    stdio: ['ignore', 'pipe', 'ignore'], // stdout carries the port, then the access log (kept flowing)
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(home, { recursive: true, force: true });
  };
  try {
    const port = await listeningPort(child.stdout, exited);
    const url = `http://127.0.0.1:${port}/`;
    await waitUntilAnswers(url);
    return { url, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Reads "listening at … (bound to 127.0.0.1:PORT)" from hg serve's output. */
function listeningPort(stdout: NodeJS.ReadableStream, exited: Promise<void>): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /bound to [^:]+:(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    void exited.then(() => reject(new Error(`hg serve exited: ${text}`)));
    setTimeout(() => reject(new Error('hg serve did not start within 10 s')), 10_000).unref();
  });
}

async function waitUntilAnswers(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`${url}?cmd=capabilities`);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`hg serve at ${url} does not answer`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
