// A loopback smart-HTTP git server for tests: node:http runs `git http-backend` as a CGI program per
// request, serving every bare repository under a temporary root. createRepo builds one from a spec
// (commits on main, a branch, a tag) and allows fetching any commit by id.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A file's content, or a symlink to create instead. */
export type RepoFile = string | { symlink: string };

export interface RepoCommit {
  files: Record<string, RepoFile>;
  message?: string;
}

export interface RepoSpec {
  /** Commits on the default branch (main), oldest first. */
  commits: RepoCommit[];
  /** A branch forked from the last default-branch commit. */
  branch?: { name: string; commits: RepoCommit[] };
  /** An annotated tag on one of `commits` (by index; default the first). */
  tag?: { name: string; commit?: number };
}

export interface CreatedRepo {
  /** Clone URL of the repository. */
  url: string;
  /** Ids of `spec.commits`, in order. */
  commits: string[];
  /** Ids of `spec.branch.commits`, in order. */
  branchCommits: string[];
}

export interface GitServer {
  url: string;
  root: string;
  createRepo(name: string, spec: RepoSpec): Promise<CreatedRepo>;
  close(): Promise<void>;
}

/** An environment for git commands in tests: no user or system configuration, fixed identity and dates. */
export function gitTestEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.com',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.com',
    GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z',
    GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z',
  };
}

export async function startGitServer(): Promise<GitServer> {
  const root = await mkdtemp(path.join(tmpdir(), 'git-server-'));
  const server = http.createServer((req, res) => serveCgi(root, req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    root,
    async createRepo(name, spec) {
      const { commits, branchCommits } = await createGitRepo(path.join(root, `${name}.git`), spec);
      return { url: `${url}/${name}.git`, commits, branchCommits };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// CGI

function serveCgi(root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {});
  relayCgiOutput(child.stdout, res);
  child.on('error', () => fail(res));
}

/** Splits CGI output into headers (with `Status:`) and body, and relays both. */
function relayCgiOutput(stdout: NodeJS.ReadableStream, res: http.ServerResponse): void {
  let head = Buffer.alloc(0);
  let headersSent = false;
  stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (end === null) return;
    writeCgiHeaders(res, head.subarray(0, end.at).toString('latin1'));
    headersSent = true;
    res.write(head.subarray(end.at + end.length));
  });
  stdout.on('end', () => (headersSent ? res.end() : fail(res)));
}

function headerEnd(buffer: Buffer): { at: number; length: number } | null {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 };
  return lf >= 0 ? { at: lf, length: 2 } : null;
}

function writeCgiHeaders(res: http.ServerResponse, text: string): void {
  let status = 200;
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
    else res.setHeader(name, value);
  }
  res.writeHead(status);
}

function fail(res: http.ServerResponse): void {
  if (!res.headersSent) res.writeHead(500);
  res.end();
}

// ---------------------------------------------------------------------------------------------------
// Repositories

/** Creates the bare repository `bareDir` from `spec`; fetching by commit id is allowed. */
export async function createGitRepo(bareDir: string, spec: RepoSpec): Promise<{ commits: string[]; branchCommits: string[] }> {
  const work = await mkdtemp(path.join(tmpdir(), 'git-work-'));
  const env = gitTestEnv(work);
  const git = async (...args: string[]) => (await run('git', args, { cwd: work, env })).stdout.trim();
  try {
    await git('init', '-q', '-b', 'main');
    const commits = await commitAll(work, git, spec.commits);
    const branchCommits: string[] = [];
    if (spec.branch) {
      await git('checkout', '-q', '-b', spec.branch.name);
      branchCommits.push(...(await commitAll(work, git, spec.branch.commits)));
      await git('checkout', '-q', 'main');
    }
    if (spec.tag) await git('tag', '-a', spec.tag.name, '-m', spec.tag.name, commits[spec.tag.commit ?? 0] ?? 'HEAD');
    await run('git', ['clone', '-q', '--bare', work, bareDir], { env });
    for (const setting of ['uploadpack.allowReachableSHA1InWant', 'uploadpack.allowAnySHA1InWant']) {
      await run('git', ['config', setting, 'true'], { cwd: bareDir, env });
    }
    return { commits, branchCommits };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function commitAll(work: string, git: (...args: string[]) => Promise<string>, commits: RepoCommit[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [index, commit] of commits.entries()) {
    await writeFiles(work, commit.files);
    await git('add', '-A');
    await git('commit', '-q', '--allow-empty', '-m', commit.message ?? `commit ${index + 1}`);
    ids.push(await git('rev-parse', 'HEAD'));
  }
  return ids;
}

/** Writes files (and symlinks) under `dir`, making parent directories. */
export async function writeFiles(dir: string, files: Record<string, RepoFile>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await rm(file, { force: true });
    if (typeof content === 'string') await writeFile(file, content);
    else await symlink(content.symlink, file);
  }
}
