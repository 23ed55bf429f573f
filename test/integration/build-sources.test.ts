// Build sources over real loopback servers: tarball downloads under the address policy (redirects,
// size caps, timeouts), git over a smart-HTTP server, Mercurial over `hg serve`, and the fetched trees
// resolved and packed into build contexts.
import { createReadStream, existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { LookupAllOptions } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  checkRepositoryUrl,
  DEFAULT_CONTEXT_LIMITS,
  downloadTarball,
  extractTarball,
  fetchGit,
  fetchMercurial,
  packContext,
  resolveContext,
  type AddressPolicy,
} from '../../src/domain/builds/context/index.ts';
import { type EgressProxy, startEgressProxy } from '../../src/domain/builds/context/egress-proxy.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { type CreatedRepo, type GitServer, startGitServer } from '../support/git-server.ts';
import { type CreatedHgRepo, createHgRepo, type HgServer, startHgServer } from '../support/hg-server.ts';

// `pinned.test` resolves to 127.0.0.1 only through the lookup the address policy uses: the system
// resolver does not know it, so a download from it works only if the connection is pinned to the
// checked address (the defence against DNS rebinding).
vi.mock('node:dns/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:dns/promises')>();
  const lookup = (host: string, options: LookupAllOptions) =>
    host === 'pinned.test' ? Promise.resolve([{ address: '127.0.0.1', family: 4 }]) : real.lookup(host, options);
  return { ...real, lookup, default: { ...real, lookup } };
});

const execFileAsync = promisify(execFile);
const DEFAULT_POLICY: AddressPolicy = { allowPrivate: false, allowedHosts: [] };
const LOOPBACK_POLICY: AddressPolicy = { allowPrivate: false, allowedHosts: ['127.0.0.1'] };

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject');
}

async function expectDomainError(work: Promise<unknown>, code: string, message?: RegExp): Promise<DomainError> {
  const err = await rejection(work);
  expect(err, String(err)).toBeInstanceOf(DomainError);
  expect((err as DomainError).code, (err as DomainError).message).toBe(code);
  if (message) expect((err as DomainError).message).toMatch(message);
  return err as DomainError;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      out.push(entry.isDirectory() ? `${child}/` : child);
      if (entry.isDirectory()) await walk(child);
    }
  };
  await walk('');
  return out.sort();
}

let work: string;
let dir: string;
let counter = 0;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'build-sources-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  counter += 1;
  dir = path.join(work, `case-${counter}`);
  await mkdir(dir);
});

/** Gives the current test a fresh empty `dir`. */
async function emptyDir(): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
}

/** Packs `source` with packContext and extracts it again with extractTarball; returns the new tree's listing. */
async function roundTrip(source: string): Promise<string[]> {
  const out = `${source}-packed`;
  await mkdir(out);
  await extractTarball(packContext(source, DEFAULT_CONTEXT_LIMITS), out, DEFAULT_CONTEXT_LIMITS);
  return listTree(out);
}

// ---------------------------------------------------------------------------------------------------

interface TestHttp {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

async function startHttp(host: string, handler: http.RequestListener): Promise<TestHttp> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    url: `http://${host}:${(server.address() as AddressInfo).port}`,
    hits,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function contextArchive(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, 'FROM busybox\nCOPY app.txt /\n');
  pack.entry({ name: 'app.txt' }, 'hello');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

describe('downloadTarball', () => {
  let first: TestHttp;
  let second: TestHttp;
  let archive: Buffer;
  const opts = (policy: AddressPolicy, extra: Partial<{ maxBytes: number; timeoutMs: number; signal: AbortSignal }> = {}) => ({
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    policy,
    ...extra,
  });

  beforeAll(async () => {
    archive = await contextArchive();
    // The redirect target listens on another loopback address, so that the policy can tell the two apart.
    second = await startHttp('127.0.0.2', (_req, res) => {
      res.writeHead(200, { 'content-length': archive.length });
      res.end(archive);
    });
    first = await startHttp('127.0.0.1', (req, res) => {
      const url = req.url ?? '';
      if (url === '/ctx.tar.gz') {
        res.writeHead(200, { 'content-length': archive.length, 'content-type': 'application/gzip' });
        res.end(archive);
      } else if (url === '/to-second') {
        res.writeHead(302, { location: `${second.url}/ctx.tar.gz` });
        res.end();
      } else if (url === '/relative') {
        res.writeHead(307, { location: '/ctx.tar.gz' });
        res.end();
      } else if (url.startsWith('/loop')) {
        res.writeHead(301, { location: `/loop${url.length}` });
        res.end();
      } else if (url === '/to-file') {
        res.writeHead(302, { location: 'file:///etc/passwd' });
        res.end();
      } else if (url === '/declared-huge') {
        res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
        res.write(Buffer.alloc(1024));
      } else if (url === '/chunked-huge') {
        res.writeHead(200); // no content-length: chunked
        const chunk = Buffer.alloc(64 * 1024, 1);
        let sent = 0;
        const pump = () => {
          while (sent < 4 * 1024 * 1024 && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (url === '/hang') {
        // never answers
      } else {
        res.writeHead(404);
        res.end('no');
      }
    });
  });
  afterAll(async () => {
    await first.close();
    await second.close();
  });

  const dest = () => path.join(dir, 'download.tar.gz');

  it('refuses loopback by default, before connecting', async () => {
    const before = first.hits.length;
    await expectDomainError(downloadTarball(`${first.url}/ctx.tar.gz`, dest(), opts(DEFAULT_POLICY)), 'URL_NOT_ALLOWED');
    expect(first.hits.length).toBe(before);
    expect(existsSync(dest())).toBe(false);
  });

  it.each([
    ['allowPrivate', { allowPrivate: true, allowedHosts: [] }],
    ['an allowed IP', { allowPrivate: false, allowedHosts: ['127.0.0.1'] }],
    ['an allowed CIDR', { allowPrivate: false, allowedHosts: ['127.0.0.0/8'] }],
  ])('downloads from loopback with %s, and the archive extracts', async (_name, policy) => {
    await downloadTarball(`${first.url}/ctx.tar.gz`, dest(), opts(policy));
    expect((await readFile(dest())).equals(archive)).toBe(true);
    const ctx = path.join(dir, 'ctx');
    await mkdir(ctx);
    await extractTarball(createReadStream(dest()), ctx, DEFAULT_CONTEXT_LIMITS);
    expect(await listTree(ctx)).toEqual(['Dockerfile', 'app.txt']);
  });

  it('allows a host name listed in allowedHosts', async () => {
    const url = `${first.url.replace('127.0.0.1', 'localhost')}/ctx.tar.gz`;
    await expectDomainError(downloadTarball(url, dest(), opts(DEFAULT_POLICY)), 'URL_NOT_ALLOWED');
    await downloadTarball(url, dest(), opts({ allowPrivate: false, allowedHosts: ['localhost'] }));
    expect((await readFile(dest())).equals(archive)).toBe(true);
  });

  it('connects to the address it checked, not to a second resolution', async () => {
    const url = `${first.url.replace('127.0.0.1', 'pinned.test')}/ctx.tar.gz`;
    await expectDomainError(downloadTarball(url, dest(), opts(DEFAULT_POLICY)), 'URL_NOT_ALLOWED', /pinned\.test \(127\.0\.0\.1\)/);
    await downloadTarball(url, dest(), opts({ allowPrivate: false, allowedHosts: ['pinned.test'] }));
    expect((await readFile(dest())).equals(archive)).toBe(true);
  });

  it.each([
    'http://10.0.0.1/x.tgz',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://0.0.0.0/x',
    'http://100.64.0.1/x',
    'http://[fd00::1]/x',
    'http://[fe80::1]/x',
    'http://224.0.0.1/x',
    'http://2130706433/x', // 127.0.0.1 written as a number
  ])('refuses %s', async (url) => {
    await expectDomainError(downloadTarball(url, dest(), opts(DEFAULT_POLICY, { timeoutMs: 1000 })), 'URL_NOT_ALLOWED');
  });

  it.each(['ftp://example.com/x.tgz', 'file:///etc/passwd', 'not a url'])('refuses the URL %j', async (url) => {
    await expectDomainError(downloadTarball(url, dest(), opts(DEFAULT_POLICY)), 'URL_NOT_ALLOWED');
  });

  it('re-checks redirect targets', async () => {
    await downloadTarball(`${first.url}/to-second`, dest(), opts({ allowPrivate: true, allowedHosts: [] }));
    expect((await readFile(dest())).equals(archive)).toBe(true);
    await downloadTarball(`${first.url}/to-second`, dest(), opts({ allowPrivate: false, allowedHosts: ['127.0.0.1', '127.0.0.2'] }));
    const before = second.hits.length;
    await expectDomainError(downloadTarball(`${first.url}/to-second`, dest(), opts(LOOPBACK_POLICY)), 'URL_NOT_ALLOWED', /127\.0\.0\.2/);
    expect(second.hits.length).toBe(before);
    await expectDomainError(downloadTarball(`${first.url}/to-file`, dest(), opts(LOOPBACK_POLICY)), 'URL_NOT_ALLOWED');
  });

  it('follows a relative redirect, and at most 3', async () => {
    await downloadTarball(`${first.url}/relative`, dest(), opts(LOOPBACK_POLICY));
    expect((await readFile(dest())).equals(archive)).toBe(true);
    const before = first.hits.length;
    await expectDomainError(downloadTarball(`${first.url}/loop`, dest(), opts(LOOPBACK_POLICY)), 'SOURCE_FETCH_FAILED', /redirects/);
    expect(first.hits.length - before).toBe(4);
  });

  it('refuses an oversized Content-Length up front and an oversized chunked body', async () => {
    await expectDomainError(downloadTarball(`${first.url}/declared-huge`, dest(), opts(LOOPBACK_POLICY)), 'TOO_LARGE');
    expect(existsSync(dest())).toBe(false);
    await expectDomainError(downloadTarball(`${first.url}/chunked-huge`, dest(), opts(LOOPBACK_POLICY)), 'TOO_LARGE');
    expect(existsSync(dest())).toBe(false);
  });

  it('reports HTTP errors with the status, without credentials', async () => {
    const url = first.url.replace('http://', 'http://user:s3cret-token@');
    const error = await expectDomainError(downloadTarball(`${url}/missing?sig=abc`, dest(), opts(LOOPBACK_POLICY)), 'SOURCE_FETCH_FAILED', /404/);
    expect(error.message).not.toMatch(/s3cret|sig=abc/);
  });

  it('times out, and stops when aborted', async () => {
    await expectDomainError(downloadTarball(`${first.url}/hang`, dest(), opts(LOOPBACK_POLICY, { timeoutMs: 300 })), 'SOURCE_FETCH_FAILED', /timed out/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('cancelled by test')), 100);
    const err = await rejection(downloadTarball(`${first.url}/hang`, dest(), opts(LOOPBACK_POLICY, { signal: controller.signal })));
    expect((err as Error).message).toBe('cancelled by test');
  });
});

// ---------------------------------------------------------------------------------------------------

describe('fetchGit', () => {
  let server: GitServer;
  let repo: CreatedRepo;
  const fetch = (ref: string, extra: Partial<Parameters<typeof fetchGit>[0]> = {}) =>
    fetchGit({ url: repo.url, ref, dir, policy: LOOPBACK_POLICY, timeoutMs: 20_000, ...extra });

  beforeAll(async () => {
    server = await startGitServer();
    repo = await server.createRepo('app', {
      commits: [
        { files: { Dockerfile: 'FROM busybox\n', 'README.md': 'v1\n' } },
        {
          files: {
            'README.md': 'v2\n',
            'services/api/docker/Dockerfile.api': 'FROM busybox\nCOPY . /app\n',
            'services/api/main.txt': 'api\n',
            'services/api/current': { symlink: 'main.txt' },
          },
        },
      ],
      branch: { name: 'feature/x', commits: [{ files: { 'README.md': 'feature\n' } }] },
      tag: { name: 'v1.0', commit: 0 },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  const readme = () => readFile(path.join(dir, 'README.md'), 'utf8');

  it('fetches the default branch (HEAD) and main', async () => {
    expect(await fetch('HEAD')).toEqual({ commit: repo.commits[1] });
    expect(await readme()).toBe('v2\n');
  });

  it('fetches a branch', async () => {
    expect(await fetch('feature/x')).toEqual({ commit: repo.branchCommits[0] });
    expect(await readme()).toBe('feature\n');
  });

  it('fetches a tag', async () => {
    expect(await fetch('v1.0')).toEqual({ commit: repo.commits[0] });
    expect(await readme()).toBe('v1\n');
  });

  it('fetches a full commit id', async () => {
    const sha = repo.commits[0] as string;
    expect(await fetch(sha)).toEqual({ commit: sha });
    expect(await readme()).toBe('v1\n');
  });

  it('resolves a subdirectory context and Dockerfile path, and packs it', async () => {
    await fetch('main');
    const resolved = await resolveContext(dir, 'services/api', 'docker/Dockerfile.api');
    expect(resolved.dockerfile).toBe('docker/Dockerfile.api');
    expect(resolved.contextDir).toBe(path.join(dir, 'services/api'));
    expect(await roundTrip(resolved.contextDir)).toEqual(['current', 'docker/', 'docker/Dockerfile.api', 'main.txt']);
  });

  it('packs the whole checkout without .git', async () => {
    await fetch('main');
    expect(existsSync(path.join(dir, '.git'))).toBe(true);
    expect(await roundTrip(dir)).toEqual([
      'Dockerfile',
      'README.md',
      'services/',
      'services/api/',
      'services/api/current',
      'services/api/docker/',
      'services/api/docker/Dockerfile.api',
      'services/api/main.txt',
    ]);
  });

  it('refuses refs that start with "-" and non-http URLs before running git', async () => {
    await expectDomainError(fetch('--upload-pack=touch /tmp/pwned'), 'INVALID_SOURCE');
    await expectDomainError(fetch('-h'), 'INVALID_SOURCE');
    for (const url of ['file:///tmp/repo', 'ext::sh -c touch% /tmp/pwned', 'ext::git-upload-pack']) {
      expect(() => checkRepositoryUrl(url, 'git')).toThrow(DomainError);
      await expectDomainError(fetch('main', { url }), 'INVALID_SOURCE');
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails on a ref that does not exist, with git\'s reason and no credentials', async () => {
    const url = repo.url.replace('http://', 'http://someone:hunter2-secret@');
    const error = await expectDomainError(fetch('no-such-branch', { url }), 'SOURCE_FETCH_FAILED', /no-such-branch/);
    expect(error.message).not.toMatch(/hunter2/);
  });

  it('connects to the address it checked (git would not resolve pinned.test itself)', async () => {
    const url = repo.url.replace('127.0.0.1', 'pinned.test');
    expect(await fetch('main', { url, policy: { allowPrivate: false, allowedHosts: ['pinned.test'] } })).toEqual({ commit: repo.commits[1] });
  });

  it('refuses a host the policy does not allow, without contacting it', async () => {
    await expectDomainError(fetch('main', { policy: DEFAULT_POLICY }), 'URL_NOT_ALLOWED');
    expect(await readdir(dir)).toEqual([]);
  });

  it('times out on a server that does not answer, and stops when aborted', async () => {
    const hang = await startHttp('127.0.0.1', () => {});
    try {
      const url = `${hang.url}/app.git`;
      const started = Date.now();
      await expectDomainError(fetch('main', { url, timeoutMs: 700 }), 'SOURCE_FETCH_FAILED', /timed out/);
      expect(Date.now() - started).toBeLessThan(5000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled by test')), 300);
      const err = await rejection(fetch('main', { url, signal: controller.signal }));
      expect((err as Error).message).toBe('cancelled by test');
    } finally {
      await hang.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('fetchMercurial', () => {
  let server: HgServer;
  let repo: CreatedHgRepo;
  const fetch = (revision: string, extra: Partial<Parameters<typeof fetchMercurial>[0]> = {}) =>
    fetchMercurial({ url: server.url, revision, dir, policy: LOOPBACK_POLICY, timeoutMs: 30_000, ...extra });
  const readme = () => readFile(path.join(dir, 'README.md'), 'utf8');

  beforeAll(async () => {
    const repoDir = path.join(work, 'hg-repo');
    repo = await createHgRepo(repoDir, {
      commits: [
        { files: { Dockerfile: 'FROM busybox\n', 'README.md': 'v1\n' } },
        { files: { 'README.md': 'v2\n', 'sub/Dockerfile': 'FROM busybox\n' } },
      ],
      branch: { name: 'stable', commits: [{ files: { 'README.md': 'stable\n' } }] },
      tag: { name: 'v1.0', commit: 0 },
    });
    server = await startHgServer(repoDir);
  });
  afterAll(async () => {
    await server.close();
  });

  it('fetches default', async () => {
    expect(await fetch('default')).toEqual({ commit: repo.defaultHead });
    expect(await readme()).toBe('v2\n');
    expect(existsSync(path.join(dir, '.hg'))).toBe(true);
    expect(await roundTrip(dir)).toEqual(['.hgtags', 'Dockerfile', 'README.md', 'sub/', 'sub/Dockerfile']);
  });

  it('fetches a tag, a named branch and a node id', async () => {
    expect(await fetch('v1.0')).toEqual({ commit: repo.commits[0] });
    expect(await readme()).toBe('v1\n');
    await emptyDir();
    expect(await fetch('stable')).toEqual({ commit: repo.branchCommits[0] });
    expect(await readme()).toBe('stable\n');
    await emptyDir();
    expect(await fetch(repo.commits[1] as string)).toEqual({ commit: repo.commits[1] });
  });

  it('resolves a subdirectory context', async () => {
    await fetch('default');
    const resolved = await resolveContext(dir, 'sub', 'Dockerfile');
    expect(resolved.dockerfile).toBe('Dockerfile');
  });

  it('fails on a revision that does not exist, and refuses option-like revisions', async () => {
    await expectDomainError(fetch('no-such-revision'), 'SOURCE_FETCH_FAILED', /hg update failed/);
    await expectDomainError(fetch('--config=x'), 'INVALID_SOURCE');
    await expectDomainError(fetch('default', { url: 'ssh://127.0.0.1/repo' }), 'INVALID_SOURCE');
    await expectDomainError(fetch('default', { policy: DEFAULT_POLICY }), 'URL_NOT_ALLOWED');
  });

  it('does not follow subrepositories (they could pull from anywhere)', async () => {
    const repoDir = path.join(work, 'hg-with-subrepo');
    await createHgRepo(repoDir, { commits: [{ files: { Dockerfile: 'FROM busybox\n' } }] });
    const env = { PATH: process.env.PATH, HOME: work, HGRCPATH: '/dev/null', HGUSER: 'Test <test@example.com>' };
    const hg = (cwd: string, ...args: string[]) => execFileAsync('hg', args, { cwd, env });
    await hg(repoDir, 'init', 'sub');
    await writeFile(path.join(repoDir, 'sub', 'inner.txt'), 'inner\n');
    await hg(path.join(repoDir, 'sub'), 'commit', '-A', '-m', 'inner');
    await writeFile(path.join(repoDir, '.hgsub'), 'sub = http://127.0.0.1:9/elsewhere\n');
    await hg(repoDir, 'commit', '-A', '-m', 'add a subrepo');
    const subServer = await startHgServer(repoDir);
    try {
      await expectDomainError(fetch('default', { url: subServer.url }), 'SOURCE_FETCH_FAILED', /subrepo/);
    } finally {
      await subServer.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('fetchMercurial through the egress proxy', () => {
  let hgServer: HgServer;
  let repo: CreatedHgRepo;
  let internal: TestHttp; // on 127.0.0.2: what a redirect must not reach
  let redirector: TestHttp; // on 127.0.0.1: answers every request with a 302 to `internal`
  let relay: TestHttp; // on 127.0.0.2: answers every request with a 302 to the same path on `hgServer`
  const fetch = (url: string, policy: AddressPolicy) =>
    fetchMercurial({ url, revision: 'default', dir, policy, timeoutMs: 30_000 });

  beforeAll(async () => {
    const repoDir = path.join(work, 'hg-proxied-repo');
    repo = await createHgRepo(repoDir, { commits: [{ files: { Dockerfile: 'FROM busybox\n', 'README.md': 'proxied\n' } }] });
    hgServer = await startHgServer(repoDir);
    internal = await startHttp('127.0.0.2', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('internal admin');
    });
    redirector = await startHttp('127.0.0.1', (req, res) => {
      res.writeHead(302, { location: `${internal.url}/internal-admin${req.url ?? ''}` });
      res.end();
    });
    relay = await startHttp('127.0.0.2', (req, res) => {
      res.writeHead(302, { location: new URL((req.url ?? '/').slice(1), hgServer.url).href });
      res.end();
    });
  });
  afterAll(async () => {
    await Promise.all([hgServer.close(), internal.close(), redirector.close(), relay.close()]);
  });

  it('refuses a redirect to a host the policy does not allow, and never contacts it', async () => {
    const error = await expectDomainError(
      fetch(`${redirector.url}/repo`, LOOPBACK_POLICY),
      'SOURCE_FETCH_FAILED',
      /hg clone failed: the repository redirected to 127\.0\.0\.2, which is not allowed/,
    );
    expect(error.message).not.toMatch(/internal/);
    expect(redirector.hits.length).toBeGreaterThan(0);
    expect(internal.hits).toEqual([]);
  });

  it('follows a redirect to a host the policy allows, and refuses it once the policy does not', async () => {
    const both: AddressPolicy = { allowPrivate: false, allowedHosts: ['127.0.0.1', '127.0.0.2'] };
    expect(await fetch(`${relay.url}/`, both)).toEqual({ commit: repo.defaultHead });
    expect(await readFile(path.join(dir, 'README.md'), 'utf8')).toBe('proxied\n');
    await emptyDir();
    await expectDomainError(
      fetch(`${relay.url}/`, { allowPrivate: false, allowedHosts: ['127.0.0.2'] }),
      'SOURCE_FETCH_FAILED',
      /redirected to 127\.0\.0\.1, which is not allowed/,
    );
  });

  it('fetches through the proxy, which connects to the address it checked (hg cannot resolve pinned.test)', async () => {
    const url = hgServer.url.replace('127.0.0.1', 'pinned.test');
    expect(await fetch(url, { allowPrivate: false, allowedHosts: ['pinned.test'] })).toEqual({ commit: repo.defaultHead });
    expect(await readFile(path.join(dir, 'README.md'), 'utf8')).toBe('proxied\n');
  });

  it('refuses a repository on a host the policy does not allow before hg runs', async () => {
    await expectDomainError(fetch(`${internal.url}/repo`, LOOPBACK_POLICY), 'URL_NOT_ALLOWED', /127\.0\.0\.2/);
    expect(internal.hits).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('startEgressProxy', () => {
  let proxy: EgressProxy;
  let allowed: TestHttp;
  let other: TestHttp;
  beforeAll(async () => {
    allowed = await startHttp('127.0.0.1', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-seen-proxy-auth': String(req.headers['proxy-authorization'] !== undefined) });
      res.end(`hello ${req.method} ${req.url} ${req.headers.host}`);
    });
    other = await startHttp('127.0.0.2', (_req, res) => res.end('other'));
  });
  beforeEach(async () => {
    proxy = await startEgressProxy(LOOPBACK_POLICY);
  });
  afterAll(async () => {
    await proxy.close();
    await allowed.close();
    await other.close();
  });

  const auth = () => `Basic ${Buffer.from(`${proxy.user}:${proxy.password}`).toString('base64')}`;

  /** One request to the proxy: `target` is the request target (absolute URL, or host:port for CONNECT). */
  function viaProxy(method: string, target: string, headers: Record<string, string> = { 'proxy-authorization': auth() }) {
    const { port } = new URL(proxy.url);
    return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; socket?: import('node:net').Socket }>(
      (resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false });
        req.once('connect', (res, socket) => resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers, socket }));
        req.once('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.once('error', reject);
          res.once('close', () => {
            if (res.complete) resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
            else reject(new Error('the answer was cut off'));
          });
        });
        req.once('error', reject);
        req.end();
      },
    );
  }

  it('listens on 127.0.0.1 and forwards an allowed http request, without the proxy credentials', async () => {
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await viaProxy('GET', `${allowed.url}/path?x=1`);
    expect(res.status).toBe(200);
    expect(res.body).toBe(`hello GET /path?x=1 ${allowed.url.slice('http://'.length)}`);
    expect(res.headers['x-seen-proxy-auth']).toBe('false');
  });

  it('answers 403 to a destination the policy does not allow, without contacting it', async () => {
    const before = other.hits.length;
    expect((await viaProxy('GET', `${other.url}/internal-admin`)).status).toBe(403);
    expect((await viaProxy('GET', 'http://[::1]:9/x')).status).toBe(403);
    expect((await viaProxy('GET', `${other.url.replace('127.0.0.2', '2130706434')}/x`)).status).toBe(403); // 127.0.0.2 as a number
    expect(other.hits.length).toBe(before);
    expect(proxy.refused).toEqual(['127.0.0.2', '::1', '127.0.0.2']);
  });

  it('tunnels CONNECT to an allowed address, and answers 403 otherwise', async () => {
    const ok = await viaProxy('CONNECT', allowed.url.slice('http://'.length));
    expect(ok.status).toBe(200);
    const socket = ok.socket as import('node:net').Socket;
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.once('end', () => resolve(text));
      socket.write('GET /tunnelled HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toMatch(/hello GET \/tunnelled example\.test/);
    const before = other.hits.length;
    expect((await viaProxy('CONNECT', other.url.slice('http://'.length))).status).toBe(403);
    expect((await viaProxy('CONNECT', '169.254.169.254:443')).status).toBe(403);
    expect(other.hits.length).toBe(before);
    expect(proxy.refused).toEqual(['127.0.0.2', '169.254.169.254']);
  });

  it('requires its credentials, and refuses requests that are not proxy requests', async () => {
    const before = allowed.hits.length;
    expect((await viaProxy('GET', `${allowed.url}/`, {})).status).toBe(407);
    expect((await viaProxy('GET', `${allowed.url}/`, { 'proxy-authorization': 'Basic ZG9ja3lhcmQ6d3Jvbmc=' })).status).toBe(407);
    expect((await viaProxy('CONNECT', allowed.url.slice('http://'.length), {})).status).toBe(407);
    expect((await viaProxy('GET', '/')).status).toBe(400);
    expect((await viaProxy('GET', 'https://127.0.0.1/')).status).toBe(400);
    expect((await viaProxy('CONNECT', '127.0.0.1')).status).toBe(400);
    expect(allowed.hits.length).toBe(before);
  });

  it('survives a server that breaks off mid-answer and a client that goes away mid-request', async () => {
    const breaking = await startHttp('127.0.0.1', (req, res) => {
      if (req.url === '/slow') return; // never answers: the client gives up
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    try {
      await expect(viaProxy('GET', `${breaking.url}/broken`)).rejects.toThrow();
      const { port } = new URL(proxy.url);
      const gone = http.request({ host: '127.0.0.1', port, method: 'POST', path: `${breaking.url}/slow`, headers: { 'proxy-authorization': auth(), 'content-length': '100' }, agent: false });
      gone.on('error', () => {});
      gone.write('x');
      await new Promise((resolve) => setTimeout(resolve, 100));
      gone.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await viaProxy('GET', `${allowed.url}/after`)).status).toBe(200);
    } finally {
      await breaking.close();
    }
  });

  it('stops accepting connections once closed', async () => {
    await proxy.close();
    await expect(viaProxy('GET', `${allowed.url}/`)).rejects.toThrow(/ECONNREFUSED/);
  });
});
