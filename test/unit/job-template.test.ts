// Job containers without an engine: the fixed template (every field, so that a change to it is a visible
// change to this test), the names and labels, and reading a hostile /outbox archive.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isJobContainer, jobContainerOptions, jobNames, loaderContainerOptions, tmpfsOptions } from '../../src/runner/docker/job-template.ts';
import { finerThanSeconds } from '../../src/runner/docker/docker-job-runner.ts';
import { OutboxTooLarge } from '../../src/runner/jobs.ts';
import type { JobContainerSpec, OutboxCaps } from '../../src/runner/jobs.ts';
import { extractOutbox, outboxPath, UnsafeOutboxEntry } from '../../src/runner/outbox.ts';

const spec: JobContainerSpec = {
  jobId: 42,
  ownerId: 7,
  instanceId: 'worker-1',
  image: 'sha256:0123456789abcdef',
  command: ['sh', '-c', 'echo "$GREETING" > /outbox/out.txt'],
  env: { GREETING: 'hello; rm -rf /', EMPTY: '' },
  inbox: [{ name: 'data.csv', path: '/host/data.csv' }],
  limits: { memoryBytes: 512 * 2 ** 20, cpus: 1.5, pidsLimit: 64, tmpBytes: 16 * 2 ** 20, stopGraceSeconds: 7 },
};

describe('job container template', () => {
  it('names a run of a job and its two volumes', () => {
    expect(jobNames(42, 'ab12cd34')).toEqual({
      container: 'dockyard-job-42-ab12cd34',
      loader: 'dockyard-job-42-ab12cd34-loader',
      volumes: { inbox: 'dockyard-job-42-ab12cd34-inbox', outbox: 'dockyard-job-42-ab12cd34-outbox' },
    });
  });

  it('is the fixed template, with only the image, argv, env values and limits from the spec', () => {
    const { volumes, container } = jobNames(42, 'ab12cd34');
    const labels = { 'io.dockyard.managed': 'true', 'io.dockyard.job': '42', 'io.dockyard.owner': '7', 'io.dockyard.instance': 'worker-1' };
    expect(jobContainerOptions(spec, { name: container, volumes, user: null })).toEqual({
      name: 'dockyard-job-42-ab12cd34',
      Image: 'sha256:0123456789abcdef',
      Cmd: ['sh', '-c', 'echo "$GREETING" > /outbox/out.txt'],
      Env: ['GREETING=hello; rm -rf /', 'EMPTY='],
      WorkingDir: '/inbox',
      Labels: { 'io.dockyard.managed': 'true', 'io.dockyard.job': '42', 'io.dockyard.owner': '7', 'io.dockyard.instance': 'worker-1' },
      NetworkDisabled: true,
      Tty: false,
      OpenStdin: false,
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      StopSignal: 'SIGTERM',
      StopTimeout: 7,
      HostConfig: {
        Privileged: false,
        CapDrop: ['ALL'],
        CapAdd: [],
        SecurityOpt: ['no-new-privileges:true'],
        ReadonlyRootfs: true,
        Mounts: [
          { Type: 'volume', Source: 'dockyard-job-42-ab12cd34-inbox', Target: '/inbox', ReadOnly: true, VolumeOptions: { NoCopy: true, Labels: labels } },
          { Type: 'volume', Source: 'dockyard-job-42-ab12cd34-outbox', Target: '/outbox', ReadOnly: false, VolumeOptions: { NoCopy: true, Labels: labels } },
        ],
        Tmpfs: { '/tmp': 'rw,nosuid,nodev,noexec,size=16777216,mode=1777' },
        Binds: [],
        NetworkMode: 'none',
        PortBindings: {},
        PublishAllPorts: false,
        PidsLimit: 64,
        Memory: 536870912,
        MemorySwap: 536870912,
        OomKillDisable: false,
        OomScoreAdj: 500,
        NanoCpus: 1_500_000_000,
        Ulimits: [
          { Name: 'nofile', Soft: 1024, Hard: 1024 },
          { Name: 'fsize', Soft: 2 ** 30, Hard: 2 ** 30 },
          { Name: 'core', Soft: 0, Hard: 0 },
        ],
        Init: true,
        AutoRemove: false,
        RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
        IpcMode: 'private',
        ShmSize: 64 * 2 ** 20,
        Devices: [],
      },
    });
  });

  it('gives a job without attachments an empty read-only tmpfs as /inbox instead of a volume, and can leave the outbox anonymous', () => {
    const { volumes, container } = jobNames(42, 'ab12cd34');
    const options = jobContainerOptions({ ...spec, inbox: [] }, { name: container, volumes: { inbox: null, outbox: null }, user: null });
    expect(options.WorkingDir).toBe('/inbox');
    // An anonymous outbox volume: the engine makes it with the container and removes it with it.
    expect(options.HostConfig?.Mounts).toEqual([
      { Type: 'volume', Target: '/outbox', ReadOnly: false, VolumeOptions: { NoCopy: true, Labels: expect.objectContaining({ 'io.dockyard.job': '42' }) } },
    ]);
    expect(options.HostConfig?.Tmpfs).toEqual({
      '/inbox': 'ro,nosuid,nodev,noexec,size=4096,mode=755',
      '/tmp': 'rw,nosuid,nodev,noexec,size=16777216,mode=1777',
    });
    const loader = loaderContainerOptions(spec, 'dockyard-job-42-ab12cd34-loader', { inbox: null, outbox: volumes.outbox });
    expect(loader.HostConfig?.Mounts?.map((m) => [m.Target, m.ReadOnly])).toEqual([['/outbox', false]]);
  });

  it('sets the user and gives /tmp to it when the admin forces one', () => {
    const { volumes, container } = jobNames(42, 'ab12cd34');
    const options = jobContainerOptions(spec, { name: container, volumes, user: '65534:65534' });
    expect(options.User).toBe('65534:65534');
    expect(options.HostConfig?.Tmpfs).toEqual({ '/tmp': 'rw,nosuid,nodev,noexec,size=16777216,mode=1777,uid=65534,gid=65534' });
    expect(tmpfsOptions(1024, 'nobody')).toBe('rw,nosuid,nodev,noexec,size=1024,mode=1777');
  });

  it('trusts an unchanged /outbox mtime only when the filesystem keeps fractions of a second', () => {
    expect(finerThanSeconds('2026-11-22T10:54:05.45739615Z')).toBe(true);
    expect(finerThanSeconds('2026-11-22T10:54:05.004Z')).toBe(true);
    expect(finerThanSeconds('2026-11-22T10:54:05Z')).toBe(false);
    expect(finerThanSeconds('2026-11-22T10:54:05.000000000Z')).toBe(false);
  });

  it('tells its own containers by name and job label, not by labels alone', () => {
    const labels = { 'io.dockyard.managed': 'true', 'io.dockyard.job': '42' };
    expect(isJobContainer('/dockyard-job-42-ab12cd34', labels)).toBe(true);
    expect(isJobContainer('/dockyard-job-42-ab12cd34-loader', labels)).toBe(true);
    expect(isJobContainer('/dockyard-job-43-ab12cd34', labels)).toBe(false);
    expect(isJobContainer('/eager_turing', labels)).toBe(false); // a build step FROM an image carrying the labels
    expect(isJobContainer('/dockyard-job-42-ab12cd34', { 'io.dockyard.job': '42' })).toBe(false);
  });

  it('makes a loader that mounts both volumes read-write, with no network, marked as a loader', () => {
    const { volumes, loader } = jobNames(42, 'ab12cd34');
    const options = loaderContainerOptions(spec, loader, volumes);
    expect(options.Labels).toEqual({
      'io.dockyard.managed': 'true',
      'io.dockyard.job': '42',
      'io.dockyard.owner': '7',
      'io.dockyard.instance': 'worker-1',
      'io.dockyard.role': 'loader',
    });
    expect(options.HostConfig?.NetworkMode).toBe('none');
    expect(options.HostConfig?.Mounts?.map((m) => [m.Target, m.ReadOnly])).toEqual([
      ['/inbox', false],
      ['/outbox', false],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------
// The outbox archive, as the engine would send it, or as a hostile one would be made.

type TarEntry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device'; content?: string | Buffer; linkname?: string; size?: number };

async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk: unknown) => void chunks.push(chunk as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? (entry.content === undefined ? 'directory' : 'file');
    const header = { name: entry.name, type, mode: 0o644, linkname: entry.linkname };
    if (type === 'file') pack.entry(header, Buffer.from(entry.content ?? ''));
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const caps: OutboxCaps = { maxTotalBytes: 1000, maxFiles: 10, maxFileBytes: 500 };
const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

describe('outbox archive', () => {
  let dest: string;
  beforeEach(async () => {
    dest = await mkdtemp(path.join(tmpdir(), 'dockyard-outbox-'));
  });
  afterEach(() => rm(dest, { recursive: true, force: true }));

  const extract = async (entries: TarEntry[], c: OutboxCaps = caps) => extractOutbox(Readable.from([await makeTar(entries)]), dest, c);

  it('writes regular files and directories under their paths, sorted, with size and sha256', async () => {
    const files = await extract([
      { name: 'outbox/' },
      { name: 'outbox/z.txt', content: 'last' },
      { name: 'outbox/sub/' },
      { name: 'outbox/sub/deeper/' },
      { name: 'outbox/sub/deeper/a.txt', content: 'nested' },
      { name: 'outbox/./b.txt', content: '' },
      { name: 'outbox/empty/' },
    ]);
    expect(files).toEqual([
      { path: 'b.txt', size: 0, sha256: sha256('') },
      { path: 'sub/deeper/a.txt', size: 6, sha256: sha256('nested') },
      { path: 'z.txt', size: 4, sha256: sha256('last') },
    ]);
    expect(await readFile(path.join(dest, 'sub/deeper/a.txt'), 'utf8')).toBe('nested');
    expect((await readdir(dest)).sort()).toEqual(['b.txt', 'empty', 'sub', 'z.txt']);
  });

  it('skips symlinks, hardlinks, devices and FIFOs', async () => {
    const files = await extract([
      { name: 'outbox/' },
      { name: 'outbox/real.txt', content: 'real' },
      { name: 'outbox/passwd', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'outbox/hard', type: 'link', linkname: 'outbox/real.txt' },
      { name: 'outbox/fifo', type: 'fifo' },
      { name: 'outbox/null', type: 'character-device' },
    ]);
    expect(files.map((f) => f.path)).toEqual(['real.txt']);
    expect(await readdir(dest)).toEqual(['real.txt']);
  });

  it("refuses '..', absolute names and names outside the top directory", async () => {
    await expect(extract([{ name: 'outbox/../../etc/x', content: 'x' }])).rejects.toThrow(UnsafeOutboxEntry);
    await expect(extract([{ name: '/outbox/x', content: 'x' }])).rejects.toThrow(UnsafeOutboxEntry);
    await expect(extract([{ name: 'elsewhere/x', content: 'x' }])).rejects.toThrow(UnsafeOutboxEntry);
    expect(outboxPath('outbox//a/./b/', 'outbox')).toBe('a/b');
    expect(outboxPath('./outbox/', 'outbox')).toBe('');
    expect(await readdir(dest)).toEqual([]);
  });

  it('never writes through a name twice', async () => {
    await expect(extract([{ name: 'outbox/a', content: '1' }, { name: 'outbox/a', content: '2' }])).rejects.toThrow(/EEXIST/);
  });

  it('enforces the file count, the single-file size and the total', async () => {
    const three = [{ name: 'outbox/a', content: 'aaa' }, { name: 'outbox/b', content: 'bbb' }, { name: 'outbox/c', content: 'ccc' }];
    await expect(extract(three, { ...caps, maxFiles: 2 })).rejects.toThrow(new OutboxTooLarge('the outbox holds more than 2 files and directories'));
    await rm(dest, { recursive: true, force: true });
    await expect(extract(three, { ...caps, maxFileBytes: 2 })).rejects.toThrow(/"a" is over the cap of 2 bytes per file/);
    await rm(dest, { recursive: true, force: true });
    await expect(extract(three, { ...caps, maxTotalBytes: 8 })).rejects.toThrow(/over the cap of 8 bytes in total/);
    await rm(dest, { recursive: true, force: true });
    expect((await extract(three, { ...caps, maxTotalBytes: 9, maxFiles: 3, maxFileBytes: 3 })).length).toBe(3);
  });

  it('counts directories against the same cap, and refuses backslashes and control characters in names', async () => {
    await expect(extract([{ name: 'outbox/d1/' }, { name: 'outbox/d2/' }, { name: 'outbox/f', content: 'x' }], { ...caps, maxFiles: 2 })).rejects.toThrow(OutboxTooLarge);
    await rm(dest, { recursive: true, force: true });
    for (const name of ['outbox/a\\..\\..\\x', 'outbox/line\nbreak']) {
      await expect(extract([{ name, content: 'x' }], caps)).rejects.toThrow(/backslash|control characters/);
      await rm(dest, { recursive: true, force: true });
    }
  });
});
