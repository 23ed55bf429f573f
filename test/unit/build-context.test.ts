// Build contexts without the network: inline contexts, hostile archives, path and ref
// checks, packing, and resolving the context inside a source tree.
import { mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkRef,
  checkRelativePath,
  checkRepositoryUrl,
  contextFromDockerfile,
  DEFAULT_CONTEXT_LIMITS,
  extractTarball,
  packContext,
  resolveContext,
  type ContextLimits,
} from '../../src/domain/builds/context/index.ts';
import { DomainError } from '../../src/domain/errors.ts';

// ---------------------------------------------------------------------------------------------------
// Helpers

type TarEntry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device'; content?: string | Buffer; linkname?: string; mode?: number };

async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const { content, ...header } = entry;
    await new Promise<void>((resolve, reject) => {
      if (content !== undefined) pack.entry(header, content, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function expectDomainError(work: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<DomainError> {
  let caught: unknown;
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(DomainError);
  const error = caught as DomainError;
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
  return error;
}

/** Every path under `dir` (relative, sorted), directories with a trailing slash. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out.push(`${child}/`);
        await walk(child);
      } else {
        out.push(child);
      }
    }
  };
  await walk('');
  return out.sort();
}

let work: string;
let dir: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'build-context-'));
  dir = path.join(work, 'ctx');
  await mkdir(dir);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const extract = (archive: Buffer, limits: ContextLimits = DEFAULT_CONTEXT_LIMITS) =>
  extractTarball(Readable.from([archive]), dir, limits);

// ---------------------------------------------------------------------------------------------------

describe('contextFromDockerfile', () => {
  it('writes the Dockerfile and the files', async () => {
    const upload = path.join(work, 'upload.bin');
    await writeFile(upload, 'payload');
    await contextFromDockerfile(dir, 'FROM busybox\n', [{ name: 'app.txt', path: upload }]);
    expect(await listTree(dir)).toEqual(['Dockerfile', 'app.txt']);
    expect(await readFile(path.join(dir, 'app.txt'), 'utf8')).toBe('payload');
    expect((await stat(path.join(dir, 'Dockerfile'))).mode & 0o777).toBe(0o644);
  });

  it.each(['a/b', '..', '.', '', 'a\\b', 'nul\0', 'Dockerfile'])('refuses the file name %j', async (name) => {
    const upload = path.join(work, 'upload.bin');
    await writeFile(upload, 'x');
    const error = await expectDomainError(contextFromDockerfile(dir, 'FROM busybox\n', [{ name, path: upload }]), 'INVALID_BUILD_CONTEXT');
    expect(error.field).toBe('files');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('checkRelativePath, checkRef, checkRepositoryUrl', () => {
  it.each([
    ['', '.'],
    ['.', '.'],
    ['./', '.'],
    ['a//b/', 'a/b'],
    ['a/../b', 'b'],
    ['docker/Dockerfile.prod', 'docker/Dockerfile.prod'],
  ])('normalises %j to %j', (input, output) => {
    expect(checkRelativePath(input, 'contextPath')).toBe(output);
  });

  it.each(['/etc', '..', '../x', 'a/../../x', 'a\\b', 'a\0b'])('refuses the path %j', async (input) => {
    const error = await expectDomainError(() => checkRelativePath(input, 'dockerfilePath'), 'INVALID_SOURCE');
    expect(error.field).toBe('dockerfilePath');
  });

  it.each(['main', 'v1.2.3', 'feature/x', 'release@2024', 'a+b', 'a'.repeat(255), '0123456789abcdef0123456789abcdef01234567'])(
    'accepts the ref %j',
    (ref) => expect(checkRef(ref)).toBe(ref),
  );

  it.each(['', '-x', '--upload-pack=touch /tmp/pwned', 'a..b', 'a b', 'a;b', 'a$b', 'a:b', 'a'.repeat(256), 'x\n'])(
    'refuses the ref %j',
    async (ref) => {
      await expectDomainError(() => checkRef(ref), 'INVALID_SOURCE');
    },
  );

  it.each(['https://example.com/a.git', 'http://user:token@example.com:8080/a'])('accepts the URL %s', (url) => {
    expect(checkRepositoryUrl(url, 'git').href).toBe(url);
  });

  it.each([
    'file:///etc',
    'ext::sh -c touch% /tmp/pwned',
    'ext::sh',
    'ssh://git@example.com/a.git',
    'git://example.com/a.git',
    'git@example.com:a/b.git',
    'user@host:path',
    '/srv/repo',
    'https://example.com/a b',
    'https://example.com/a\n',
    'https://example.com/a#branch',
  ])('refuses the URL %j', async (url) => {
    await expectDomainError(() => checkRepositoryUrl(url, 'mercurial'), 'INVALID_SOURCE');
  });
});

describe('extractTarball', () => {
  it('extracts plain and gzip archives (told by their bytes), normalising modes', async () => {
    const archive = await makeTar([
      { name: './', type: 'directory', mode: 0o700 },
      { name: 'Dockerfile', content: 'FROM busybox\n', mode: 0o600 },
      { name: 'bin/run', content: '#!/bin/sh\n', mode: 0o700 },
      { name: 'deep/er/file.txt', content: 'x' },
      { name: 'link', type: 'symlink', linkname: 'deep/er/file.txt' },
      { name: 'hard', type: 'link', linkname: 'Dockerfile' },
    ]);
    await extract(gzipSync(archive));
    expect(await listTree(dir)).toEqual(['Dockerfile', 'bin/', 'bin/run', 'deep/', 'deep/er/', 'deep/er/file.txt', 'hard', 'link']);
    expect((await stat(path.join(dir, 'Dockerfile'))).mode & 0o777).toBe(0o644);
    expect((await stat(path.join(dir, 'bin/run'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(dir, 'bin'))).mode & 0o777).toBe(0o755);
    expect(await readlink(path.join(dir, 'link'))).toBe('deep/er/file.txt');
    expect(await readFile(path.join(dir, 'hard'), 'utf8')).toBe('FROM busybox\n');

    const plain = path.join(work, 'plain');
    await mkdir(plain);
    await extractTarball(Readable.from([archive]), plain, DEFAULT_CONTEXT_LIMITS);
    expect(await listTree(plain)).toEqual(await listTree(dir));
  });

  const hostile: [string, TarEntry[], RegExp][] = [
    ['a ../ name', [{ name: '../x', content: 'x' }], /'\.\.'/],
    ['a nested ../ name', [{ name: 'a/../../x', content: 'x' }], /'\.\.'/],
    ['an absolute name', [{ name: '/etc/passwd', content: 'x' }], /absolute/],
    ['a symlink to /', [{ name: 'root', type: 'symlink', linkname: '/' }], /absolute/],
    ['a symlink climbing out', [{ name: 'sub/a', type: 'symlink', linkname: '../../x' }], /outside/],
    ['a hardlink escaping', [{ name: 'h', type: 'link', linkname: '../outside.txt' }], /outside/],
    ['a hardlink to an absolute path', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], /outside/],
    ['a fifo', [{ name: 'pipe', type: 'fifo' }], /FIFO/],
    ['a character device', [{ name: 'null', type: 'character-device' }], /FIFO/],
    [
      'a write through a symlink',
      [
        { name: 'sub/', type: 'directory' },
        { name: 'd', type: 'symlink', linkname: 'sub' },
        { name: 'd/x', content: 'x' },
      ],
      /through symlinks/,
    ],
    [
      'symlinks that escape only together',
      [
        { name: 'y', type: 'symlink', linkname: 'a/..' },
        { name: 'a', type: 'symlink', linkname: 's' },
        { name: 's', type: 'symlink', linkname: '.' },
      ],
      /outside/,
    ],
    [
      'a symlink through a symlinked parent',
      [
        { name: 'sub/link', type: 'symlink', linkname: '..' },
        { name: 'y', type: 'symlink', linkname: 'sub/link/..' },
      ],
      /outside/,
    ],
    [
      'a hardlink to a symlink',
      [
        { name: 'l', type: 'symlink', linkname: 'x' },
        { name: 'h', type: 'link', linkname: 'l' },
      ],
      /regular file|symlink/,
    ],
  ];
  it.each(hostile)('refuses %s, writing nothing outside', async (_name, entries, message) => {
    const error = await expectDomainError(extract(await makeTar(entries)), 'INVALID_BUILD_CONTEXT', message);
    expect(error.message.length).toBeGreaterThan(0);
    expect((await readdir(work)).sort()).toEqual(['ctx']);
  });

  it('names the entry in the message', async () => {
    await expectDomainError(extract(await makeTar([{ name: 'ok.txt', content: 'x' }, { name: '../evil.sh', content: 'x' }])), 'INVALID_BUILD_CONTEXT', /"\.\.\/evil\.sh"/);
  });

  it('refuses too many entries', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, content: 'x' }));
    await expectDomainError(extract(await makeTar(entries), { ...DEFAULT_CONTEXT_LIMITS, maxEntries: 10 }), 'TOO_LARGE', /entries/);
  });

  it('refuses a gzip bomb over maxExpandedBytes', async () => {
    const bomb = gzipSync(await makeTar([{ name: 'zeros', content: Buffer.alloc(8 * 2 ** 20) }]));
    expect(bomb.length).toBeLessThan(64 * 1024);
    await expectDomainError(extract(bomb, { ...DEFAULT_CONTEXT_LIMITS, maxExpandedBytes: 2 ** 20 }), 'TOO_LARGE');
  });

  it('refuses a stream of zeros that expands past the cap with no entries', async () => {
    const bomb = gzipSync(Buffer.alloc(32 * 2 ** 20));
    await expectDomainError(extract(bomb, { ...DEFAULT_CONTEXT_LIMITS, maxExpandedBytes: 2 ** 20, maxEntries: 10 }), 'TOO_LARGE');
  });

  it('refuses an archive over maxArchiveBytes', async () => {
    const archive = await makeTar([{ name: 'big', content: Buffer.alloc(64 * 1024, 1) }]);
    await expectDomainError(extract(archive, { ...DEFAULT_CONTEXT_LIMITS, maxArchiveBytes: 16 * 1024 }), 'TOO_LARGE');
  });

  it('refuses names too long or too deep', async () => {
    const limits = { ...DEFAULT_CONTEXT_LIMITS, maxPathLength: 20, maxDepth: 3 };
    await expectDomainError(extract(await makeTar([{ name: 'x'.repeat(21), content: '' }]), limits), 'INVALID_BUILD_CONTEXT', /longer/);
    await rm(dir, { recursive: true });
    await mkdir(dir);
    await expectDomainError(extract(await makeTar([{ name: 'a/b/c/d', content: '' }]), limits), 'INVALID_BUILD_CONTEXT', /deeper/);
  });

  it('refuses a truncated gzip and a truncated tar', async () => {
    const archive = await makeTar([{ name: 'f', content: Buffer.alloc(100_000, 7) }]);
    const gz = gzipSync(archive);
    await expectDomainError(extract(gz.subarray(0, gz.length - 100)), 'INVALID_BUILD_CONTEXT', /truncated or corrupt/);
    await rm(dir, { recursive: true });
    await mkdir(dir);
    await expectDomainError(extract(archive.subarray(0, 5000)), 'INVALID_BUILD_CONTEXT', /truncated or corrupt/);
  });

  it('refuses garbage and empty input', async () => {
    await expectDomainError(extract(Buffer.from('this is not a tar archive at all'.repeat(40))), 'INVALID_BUILD_CONTEXT');
    await expectDomainError(extract(Buffer.alloc(0)), 'INVALID_BUILD_CONTEXT', /empty/);
  });
});

describe('packContext', () => {
  async function packToBuffer(source: string, limits: ContextLimits = DEFAULT_CONTEXT_LIMITS): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of packContext(source, limits) as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  async function buildTree(root: string): Promise<void> {
    await mkdir(path.join(root, 'src/lib'), { recursive: true });
    await mkdir(path.join(root, '.git/objects'), { recursive: true });
    await mkdir(path.join(root, '.hg'), { recursive: true });
    await mkdir(path.join(root, 'empty'));
    await writeFile(path.join(root, '.git/HEAD'), 'ref: refs/heads/main\n');
    await writeFile(path.join(root, 'Dockerfile'), 'FROM busybox\nCOPY . /app\n');
    await writeFile(path.join(root, 'src/lib/a.txt'), 'alpha');
    await writeFile(path.join(root, 'src/run.sh'), '#!/bin/sh\necho run\n', { mode: 0o700 });
    await writeFile(path.join(root, 'big.bin'), Buffer.alloc(300_000, 5));
    await symlink('lib/a.txt', path.join(root, 'src/alias'));
  }

  it('round-trips through extractTarball, skipping .git and .hg', async () => {
    const source = path.join(work, 'source');
    await buildTree(source);
    const archive = await packToBuffer(source);
    await extract(archive);
    expect(await listTree(dir)).toEqual(['Dockerfile', 'big.bin', 'empty/', 'src/', 'src/alias', 'src/lib/', 'src/lib/a.txt', 'src/run.sh']);
    for (const file of ['Dockerfile', 'big.bin', 'src/lib/a.txt', 'src/run.sh']) {
      expect((await readFile(path.join(dir, file))).equals(await readFile(path.join(source, file))), file).toBe(true);
    }
    expect(await readlink(path.join(dir, 'src/alias'))).toBe('lib/a.txt');
    expect((await stat(path.join(dir, 'src/run.sh'))).mode & 0o777).toBe(0o755);
    expect((await packToBuffer(source)).equals(archive)).toBe(true); // the same tree packs to the same bytes
  });

  it('writes fixed owners, times and sorted names', async () => {
    const source = path.join(work, 'source');
    await buildTree(source);
    const headers: { name: string; uid: number; gid: number; mtime: Date }[] = [];
    const reader = tar.extract();
    const done = (async () => {
      for await (const entry of reader) {
        headers.push(entry.header);
        entry.resume();
      }
    })();
    reader.end(await packToBuffer(source));
    await done;
    expect(headers.map((h) => h.name)).toEqual(['Dockerfile', 'big.bin', 'empty', 'src', 'src/alias', 'src/lib', 'src/lib/a.txt', 'src/run.sh']);
    expect(headers.every((h) => h.uid === 0 && h.gid === 0 && h.mtime.getTime() === 0)).toBe(true);
  });

  it('refuses a symlink that escapes the directory', async () => {
    const source = path.join(work, 'source');
    await buildTree(source);
    await symlink('../../etc/passwd', path.join(source, 'src/passwd'));
    await expectDomainError(packToBuffer(source), 'INVALID_BUILD_CONTEXT', /src\/passwd/);
  });

  it('refuses an absolute symlink and a fifo', async () => {
    const source = path.join(work, 'source');
    await mkdir(source);
    await symlink('/etc/passwd', path.join(source, 'abs'));
    await expectDomainError(packToBuffer(source), 'INVALID_BUILD_CONTEXT', /outside/);
    await rm(path.join(source, 'abs'));
    execFileSync('mkfifo', [path.join(source, 'pipe')]);
    await expectDomainError(packToBuffer(source), 'INVALID_BUILD_CONTEXT', /FIFO/);
  });

  it('enforces maxEntries and maxExpandedBytes', async () => {
    const source = path.join(work, 'source');
    await buildTree(source);
    await expectDomainError(packToBuffer(source, { ...DEFAULT_CONTEXT_LIMITS, maxEntries: 3 }), 'TOO_LARGE', /entries/);
    await expectDomainError(packToBuffer(source, { ...DEFAULT_CONTEXT_LIMITS, maxExpandedBytes: 100_000 }), 'TOO_LARGE', /size cap/);
  });
});

describe('resolveContext', () => {
  let repo: string;
  beforeEach(async () => {
    repo = path.join(work, 'repo');
    await mkdir(path.join(repo, 'services/api/docker'), { recursive: true });
    await mkdir(path.join(work, 'elsewhere'), { recursive: true });
    await writeFile(path.join(repo, 'Dockerfile'), 'FROM busybox\n');
    await writeFile(path.join(repo, 'services/api/docker/Dockerfile.prod'), 'FROM busybox\n');
    await writeFile(path.join(work, 'elsewhere/Dockerfile'), 'FROM busybox\n');
  });

  it('finds the context and the Dockerfile', async () => {
    const realRepo = await realpath(repo);
    expect(await resolveContext(repo, '', 'Dockerfile')).toEqual({ contextDir: realRepo, dockerfile: 'Dockerfile' });
    expect(await resolveContext(repo, './services/api/', 'docker//Dockerfile.prod')).toEqual({
      contextDir: path.join(realRepo, 'services/api'),
      dockerfile: 'docker/Dockerfile.prod',
    });
  });

  it('refuses paths that climb out, lexically or through symlinks', async () => {
    await expectDomainError(resolveContext(repo, '../elsewhere', 'Dockerfile'), 'INVALID_SOURCE');
    await symlink(path.join(work, 'elsewhere'), path.join(repo, 'linked'));
    await expectDomainError(resolveContext(repo, 'linked', 'Dockerfile'), 'INVALID_BUILD_CONTEXT', /outside/);
    await symlink('../../Dockerfile', path.join(repo, 'services/api/Dockerfile'));
    await expectDomainError(resolveContext(repo, 'services/api', 'Dockerfile'), 'INVALID_BUILD_CONTEXT', /outside/);
  });

  it('refuses a missing Dockerfile or one that is not a file', async () => {
    await expectDomainError(resolveContext(repo, '.', 'nope/Dockerfile'), 'INVALID_BUILD_CONTEXT', /does not exist/);
    await expectDomainError(resolveContext(repo, '.', 'services'), 'INVALID_BUILD_CONTEXT', /not a regular file/);
    await expectDomainError(resolveContext(repo, 'Dockerfile', 'Dockerfile'), 'INVALID_BUILD_CONTEXT', /not a directory/);
    await expectDomainError(resolveContext(repo, '.', '.'), 'INVALID_SOURCE');
  });
});
