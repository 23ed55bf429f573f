// Job containers on the real Docker engine (FROM busybox:latest): the template as the engine applied it,
// output and exit codes, a read-only inbox and a collected outbox, the hardening (read-only root, no
// capabilities, no network), the limits (PIDs, memory, stop), usage, and removal and reconciliation.
// Needs only Docker: every container carries an instance label of this run, and all are removed at the end.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerJobRunner } from '../../src/runner/docker/docker-job-runner.ts';
import { jobContainerOptions } from '../../src/runner/docker/job-template.ts';
import { OutboxTooLarge } from '../../src/runner/jobs.ts';
import type { JobContainerSpec, JobExit, JobLimits, OutputStream, RunningJob } from '../../src/runner/jobs.ts';

const runner = new DockerJobRunner('unix:///var/run/docker.sock');
const docker = runner.docker;
const instanceId = `test-jobs-${Math.random().toString(36).slice(2, 10)}`;
let nextJobId = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
const limits: JobLimits = { memoryBytes: 64 * 2 ** 20, cpus: 1, pidsLimit: 32, tmpBytes: 8 * 2 ** 20, stopGraceSeconds: 2 };
const MiB = 2 ** 20;
let image = '';
let workDir = '';

beforeAll(async () => {
  image = (await docker.getImage('busybox:latest').inspect()).Id;
  workDir = await mkdtemp(path.join(tmpdir(), 'dockyard-jobs-'));
});

afterAll(async () => {
  for (const c of await runner.listManaged()) if (c.instanceId === instanceId) await runner.discard(c.containerId, 0);
  await rm(workDir, { recursive: true, force: true });
});

function spec(command: string[], extra: Partial<JobContainerSpec> = {}): JobContainerSpec {
  return { jobId: nextJobId++, ownerId: 7, instanceId, image, command, env: {}, inbox: [], limits, ...extra };
}

interface Started {
  job: RunningJob;
  output: { stdout: string; stderr: string; order: OutputStream[] };
}

async function start(command: string[], extra: Partial<JobContainerSpec> = {}, jobRunner = runner): Promise<Started> {
  const output = { stdout: '', stderr: '', order: [] as OutputStream[] };
  const job = await jobRunner.start(spec(command, extra), (stream, chunk) => {
    output[stream] += chunk;
    output.order.push(stream);
  });
  return { job, output };
}

/** Runs to the end; the container stays for the test to inspect (afterAll removes it). */
async function run(script: string, extra: Partial<JobContainerSpec> = {}, jobRunner = runner): Promise<Started & { exit: JobExit }> {
  const started = await start(['sh', '-c', script], extra, jobRunner);
  return { ...started, exit: await started.job.exited };
}

/** The engine's past events of this kind for a container (by id) or for containers with a label (`key=value`). */
async function containerEvents(containerOrLabel: string, event: string, since: number): Promise<unknown[]> {
  const filters = { type: ['container' as const], event: [event], ...(containerOrLabel.includes('=') ? { label: [containerOrLabel] } : { container: [containerOrLabel] }) };
  const stream = await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000), filters });
  let text = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString();
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const exists = async (kind: 'container' | 'volume', id: string) =>
  (kind === 'container' ? docker.getContainer(id).inspect() : docker.getVolume(id).inspect()).then(
    () => true,
    (error: { statusCode?: number }) => (error.statusCode === 404 ? false : Promise.reject(error)),
  );

describe('the template', () => {
  it('is what the engine applied to a running job container, field by field', { timeout: 60_000 }, async () => {
    const attachment = path.join(workDir, 'template.txt');
    await writeFile(attachment, 'x');
    for (const inbox of [[], [{ name: 'template.txt', path: attachment }]]) {
      const s = spec(['sleep', '30'], { env: { GREETING: 'hi there', EMPTY: '' }, inbox });
      const job = await runner.start(s, () => {});
      const info = await docker.getContainer(job.containerId).inspect();
      expect(info.State.Running).toBe(true);
      const volume = (target: string) => info.Mounts.find((m) => m.Destination === target)!;
      // Without a loader to prepare it, the outbox is an anonymous volume, made and removed with the container.
      const volumes = inbox.length > 0 ? { inbox: volume('/inbox').Name!, outbox: volume('/outbox').Name! } : { inbox: null, outbox: null };
      const expected = jobContainerOptions(s, { name: info.Name.slice(1), volumes, user: null });
      const want = expected.HostConfig!;
      const got = info.HostConfig as typeof want & Record<string, unknown>;

      for (const field of ['CapDrop', 'SecurityOpt', 'ReadonlyRootfs', 'NetworkMode', 'PidsLimit', 'Memory', 'MemorySwap', 'NanoCpus', 'Init', 'Ulimits', 'LogConfig', 'Privileged', 'OomScoreAdj', 'IpcMode', 'ShmSize', 'RestartPolicy', 'AutoRemove', 'Tmpfs'] as const) {
        expect.soft(got[field], field).toEqual(want[field]);
      }
      // The engine leaves out `ReadOnly: false` when it echoes the mounts.
      expect(got.Mounts?.map((m) => ({ ...m, ReadOnly: m.ReadOnly ?? false }))).toEqual(want.Mounts);
      expect(got.Binds ?? []).toEqual([]);
      expect(got.Devices ?? []).toEqual([]);
      expect(got.CapAdd ?? []).toEqual([]);
      expect(Object.keys(got.PortBindings ?? {})).toEqual([]);

      const config = info.Config as unknown as Record<string, unknown>;
      for (const field of ['Labels', 'Cmd', 'Env', 'WorkingDir', 'StopSignal', 'StopTimeout', 'Tty', 'OpenStdin', 'NetworkDisabled'] as const) {
        expect.soft(config[field], field).toEqual((expected as Record<string, unknown>)[field]);
      }
      const labels = { 'io.dockyard.managed': 'true', 'io.dockyard.job': String(s.jobId), 'io.dockyard.owner': '7', 'io.dockyard.instance': instanceId };
      expect(info.Config.Labels).toEqual(labels);
      expect(info.Config.User).toBe('');
      expect(info.Image).toBe(image);
      // Without attachments /inbox is a tmpfs (HostConfig.Tmpfs), not a mount point of its own.
      expect(info.Mounts.map((m) => [m.Type, m.Destination, m.RW]).sort()).toEqual([
        ...(inbox.length > 0 ? [['volume', '/inbox', false]] : []),
        ['volume', '/outbox', true],
      ]);
      // Volumes the engine made with the container carry the same labels as those made beforehand.
      for (const mount of info.Mounts) expect((await docker.getVolume(mount.Name!).inspect()).Labels).toEqual(labels);
      await job.stop(0);
      await job.exited;
    }
  });
});

describe('running a job', () => {
  it('delivers output on the right streams and the exit code', { timeout: 60_000 }, async () => {
    const { exit, output } = await run('echo out; echo err >&2; exit 3');
    expect(exit).toEqual({ exitCode: 3, oomKilled: false });
    expect(output.stdout).toBe('out\n');
    expect(output.stderr).toBe('err\n');
  });

  it('has delivered every byte of output when exited resolves', { timeout: 60_000 }, async () => {
    const { exit, output } = await run('seq 1 20000; printf "no newline at the end, é"; seq 1 500 >&2');
    expect(exit.exitCode).toBe(0);
    const lines = output.stdout.split('\n');
    expect(lines.length).toBe(20001);
    expect(lines[19999]).toBe('20000');
    expect(lines[20000]).toBe('no newline at the end, é');
    expect(output.stderr.split('\n').length).toBe(501);
  });

  it('passes argv without a shell and env values unchanged', { timeout: 60_000 }, async () => {
    const { exit, output } = await run('printf "%s|" "$@" "$GREETING"; pwd', { env: { GREETING: '$(id) `id`; echo pwned' } });
    expect(exit.exitCode).toBe(0);
    expect(output.stdout).toBe('$(id) `id`; echo pwned|/inbox\n');
  });
});

describe('inbox and outbox', () => {
  it('shows the inbox read-only, and collects regular files from the outbox', { timeout: 60_000 }, async () => {
    const csv = path.join(workDir, 'data.csv');
    const bin = path.join(workDir, 'blob.bin');
    const blob = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await writeFile(csv, 'a,b\n1,2\n');
    await writeFile(bin, blob);
    const script = [
      'cat /inbox/data.csv',
      'sha256sum /inbox/blob.bin',
      'ls -l /inbox | tail -n +2',
      'echo x > /inbox/data.csv && echo inbox-overwritten',
      'touch /inbox/new && echo inbox-created',
      'rm /inbox/blob.bin && echo inbox-deleted',
      'mkdir -p /outbox/sub/deeper /outbox/empty',
      'printf hello > /outbox/a.txt',
      'head -c 3000 /dev/zero > /outbox/sub/deeper/zeros.bin',
      'ln -s /etc/passwd /outbox/passwd-link',
      'ln /outbox/a.txt /outbox/hard',
      'mkfifo /outbox/fifo',
      'echo done',
    ].join('\n');
    const { job, exit, output } = await run(script, { inbox: [{ name: 'data.csv', path: csv }, { name: 'blob.bin', path: bin }] });
    expect(output.stderr).toBe(
      [
        "sh: can't create /inbox/data.csv: Read-only file system",
        "touch: /inbox/new: Read-only file system",
        "rm: can't remove '/inbox/blob.bin': Read-only file system",
        '',
      ].join('\n'),
    );
    expect(exit.exitCode).toBe(0);
    const head = `a,b\n1,2\n${sha256(blob)}  /inbox/blob.bin\n`;
    expect(output.stdout.slice(0, head.length)).toBe(head);
    expect(output.stdout.slice(head.length)).toMatch(/^-r--r--r-- +1 root +0 +70000 .* blob\.bin\n-r--r--r-- +1 root +0 +8 .* data\.csv\ndone\n$/);

    const dest = path.join(workDir, `outbox-${job.containerId.slice(0, 12)}`);
    const files = await runner.collectOutbox(job.containerId, dest, { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB });
    expect(files).toEqual([
      { path: 'a.txt', size: 5, sha256: sha256('hello') },
      { path: 'sub/deeper/zeros.bin', size: 3000, sha256: sha256(Buffer.alloc(3000)) },
    ]);
    expect((await readdir(dest)).sort()).toEqual(['a.txt', 'empty', 'sub']);
    expect(await readFile(path.join(dest, 'a.txt'), 'utf8')).toBe('hello');

    const caps = { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB };
    const collect = (name: string, c: Partial<typeof caps>) => runner.collectOutbox(job.containerId, path.join(workDir, name), { ...caps, ...c });
    await expect(collect('few', { maxFiles: 1 })).rejects.toThrow(OutboxTooLarge);
    await expect(collect('small', { maxFileBytes: 2999 })).rejects.toThrow(/"sub\/deeper\/zeros.bin" is over the cap of 2999 bytes per file/);
    await expect(collect('total', { maxTotalBytes: 3004 })).rejects.toThrow(/over the cap of 3004 bytes in total/);
  });

  it('gives a job without attachments an empty read-only /inbox, without a loader or an inbox volume', { timeout: 60_000 }, async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const script = ['ls -A /inbox; echo listed', 'touch /inbox/x', 'grep " /inbox " /proc/mounts', 'echo kept > /outbox/kept.txt'].join('\n');
    const { job, exit, output } = await run(script);
    expect(exit.exitCode).toBe(0);
    expect(output.stdout).toMatch(/^listed\ntmpfs \/inbox tmpfs ro,/);
    expect(output.stderr).toBe('touch: /inbox/x: Read-only file system\n');
    const files = await runner.collectOutbox(job.containerId, path.join(workDir, 'no-attachments'), { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB });
    expect(files).toEqual([{ path: 'kept.txt', size: 5, sha256: sha256('kept\n') }]);
    const info = await docker.getContainer(job.containerId).inspect();
    const jobId = info.Config.Labels['io.dockyard.job']!;
    expect(await containerEvents(`io.dockyard.job=${jobId}`, 'create', since)).toHaveLength(1); // the job container only: no loader
    const volumes = await docker.listVolumes({ filters: { label: [`io.dockyard.job=${jobId}`] } });
    expect((volumes.Volumes ?? []).map((v) => v.Name)).toEqual([info.Mounts.find((m) => m.Destination === '/outbox')!.Name]);
  });

  it('collects an untouched /outbox as empty without reading an archive, and reads one that was touched', { timeout: 60_000 }, async () => {
    const caps = { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB };
    for (const [script, expected, archives] of [
      ['true', [], 0],
      ['echo x > /outbox/gone && rm /outbox/gone', [], 1],
      ['mkdir -p /outbox/a/b && echo deep > /outbox/a/b/deep.txt', ['a/b/deep.txt'], 1],
    ] as const) {
      const since = Math.floor(Date.now() / 1000) - 1;
      const { job, exit } = await run(script);
      expect(exit.exitCode).toBe(0);
      const files = await runner.collectOutbox(job.containerId, path.join(workDir, `collect-${job.containerId.slice(0, 12)}`), caps);
      expect(files.map((f) => f.path), script).toEqual(expected);
      // The engine reports each archive read of a container as an `archive-path` event.
      const reads = await containerEvents(job.containerId, 'archive-path', since);
      expect(reads, script).toHaveLength(archives);
      await runner.remove(job.containerId);
    }
  });

  it("lets a job write /outbox when the image's own user is not root", { timeout: 60_000 }, async () => {
    const base = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: { 'io.dockyard.test': instanceId } });
    const committed = (await base.commit({ changes: ['USER 65534:65534'] })) as { Id: string };
    await base.remove({ force: true });
    try {
      const { job, exit, output } = await run('id -u; echo mine > /outbox/mine.txt', { image: committed.Id });
      expect(output).toMatchObject({ stdout: '65534\n', stderr: '' });
      expect(exit.exitCode).toBe(0);
      const files = await runner.collectOutbox(job.containerId, path.join(workDir, 'image-user'), { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB });
      expect(files.map((f) => f.path)).toEqual(['mine.txt']);
      await runner.remove(job.containerId);
    } finally {
      await docker.getImage(committed.Id).remove({ force: true });
    }
  });

  it('lets a non-root job user write /outbox and /tmp when the admin forces one', { timeout: 60_000 }, async () => {
    const nobody = new DockerJobRunner('unix:///var/run/docker.sock', { user: '65534:65534' });
    const { job, exit, output } = await run('id -u; echo mine > /outbox/mine.txt && echo tmp > /tmp/t && cat /tmp/t', {}, nobody);
    expect(output.stderr).toBe('');
    expect(output.stdout).toBe('65534\ntmp\n');
    expect(exit.exitCode).toBe(0);
    const files = await runner.collectOutbox(job.containerId, path.join(workDir, 'nobody'), { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB });
    expect(files.map((f) => f.path)).toEqual(['mine.txt']);
  });
});

describe('hardening', () => {
  it('has a read-only root, a writable /tmp, no capabilities, no new privileges and no network', { timeout: 60_000 }, async () => {
    const script = [
      'touch /x 2>/dev/null && echo root-writable || echo root-read-only',
      'echo t > /tmp/t && cat /tmp/t',
      'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/self/status',
      'ls /sys/class/net',
      'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes',
      'ulimit -n; ulimit -c',
    ].join('\n');
    const { exit, output } = await run(script);
    expect(output.stderr).toBe('');
    expect(exit.exitCode).toBe(0);
    expect(output.stdout).toBe(
      [
        'root-read-only',
        't',
        'CapPrm:\t0000000000000000',
        'CapEff:\t0000000000000000',
        'CapBnd:\t0000000000000000',
        'NoNewPrivs:\t1',
        'lo',
        '32',
        String(64 * MiB),
        '1024',
        '0',
        '',
      ].join('\n'),
    );
  });

  it('refuses processes beyond the PID limit', { timeout: 60_000 }, async () => {
    const { exit, output } = await run('i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); done; echo started $i');
    // busybox sh gives up (exit 2) at the first failed fork; docker-init then ends the container and its sleeps.
    expect(output).toMatchObject({ stdout: '', stderr: "sh: can't fork: Resource temporarily unavailable\n" });
    expect(exit.exitCode).toBe(2);
  });

  it('holds a fork bomb under the PID limit, and stop() ends it', { timeout: 60_000 }, async () => {
    // busybox sh dies at its first failed fork, so the classic bomb burns out by itself here. This one keeps
    // forking: eight loops respawn subshells that fork sleeps until refused. The main process forks once
    // and becomes `sleep`, so only stop() ends the job.
    const script = 'spawn() { while :; do sleep 60 & done; }; ( for i in 1 2 3 4 5 6 7 8; do ( while :; do ( spawn ); done ) & done ) & exec sleep 60';
    const { job, output } = await start(['sh', '-c', script]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const top = await docker.getContainer(job.containerId).top();
    expect(top.Processes.length).toBeLessThanOrEqual(32);
    expect(output.stderr).toContain("can't fork: Resource temporarily unavailable");
    const before = Date.now();
    await job.stop(1);
    const exit = await job.exited;
    console.info(`fork bomb: ${top.Processes.length} processes after 2 s; stop(1) took ${Date.now() - before} ms, exit ${exit.exitCode}`);
    expect(Date.now() - before).toBeLessThan(15_000);
    expect([137, 143]).toContain(exit.exitCode);
  });

  it('kills a job over its memory limit and says so', { timeout: 60_000 }, async () => {
    const { exit } = await run('x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done', { limits: { ...limits, memoryBytes: 32 * MiB } });
    expect(exit).toEqual({ exitCode: 137, oomKilled: true });
  });

  it('stops an endless loop within the grace period', { timeout: 60_000 }, async () => {
    const { job } = await start(['sh', '-c', 'trap "" TERM; while :; do :; done']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = Date.now();
    await job.stop(1);
    const exit = await job.exited;
    const took = Date.now() - before;
    console.info(`stop(1) of a job ignoring SIGTERM took ${took} ms, exit ${exit.exitCode}`);
    expect(took).toBeLessThan(5000);
    expect([137, 143]).toContain(exit.exitCode);
    await job.stop(1); // stopping an exited container is fine
  });
});

describe('usage', () => {
  it('reports the CPU time and memory of a job that burns CPU', { timeout: 60_000 }, async () => {
    // Samples come at once and then every second: burn (in the shell, without forks) past the second sample.
    const { exit, job } = await run('end=$(($(date +%s)+3)); while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done');
    expect(exit.exitCode).toBe(0);
    const usage = job.usage();
    console.info('usage of a CPU burner', usage);
    expect(usage.cpuSeconds).toBeGreaterThan(0.3);
    expect(usage.peakMemoryBytes).toBeGreaterThan(0);
  });

  it('does not fail for a job that exits at once', { timeout: 60_000 }, async () => {
    const { exit, job } = await run('true');
    expect(exit.exitCode).toBe(0);
    expect(job.usage()).toMatchObject({ cpuSeconds: expect.any(Number), peakMemoryBytes: expect.any(Number) });
  });
});

describe('removal and reconciliation', () => {
  it('removes the container and both volumes; a second remove is fine', { timeout: 60_000 }, async () => {
    const before = Date.now();
    const { job, exit } = await run('echo hi > /outbox/hi.txt');
    await runner.collectOutbox(job.containerId, path.join(workDir, 'timing'), { maxTotalBytes: MiB, maxFiles: 10, maxFileBytes: MiB });
    const info = await docker.getContainer(job.containerId).inspect();
    await runner.remove(job.containerId);
    console.info(`a trivial job took ${Date.now() - before} ms from start to removal`);
    expect(exit.exitCode).toBe(0);
    expect(await exists('container', job.containerId)).toBe(false);
    for (const mount of info.Mounts) expect(await exists('volume', mount.Name!)).toBe(false);
    await runner.remove(job.containerId);
  });

  it('lists a running job container, and discard stops and removes it', { timeout: 60_000 }, async () => {
    const s = spec(['sleep', '60']);
    const job = await runner.start(s, () => {});
    const found = (await runner.listManaged()).find((c) => c.containerId === job.containerId);
    expect(found).toEqual({ containerId: job.containerId, jobId: s.jobId, instanceId, running: true });
    const info = await docker.getContainer(job.containerId).inspect();
    await runner.discard(job.containerId, 1);
    expect(await job.exited).toMatchObject({ exitCode: 143 });
    expect(await exists('container', job.containerId)).toBe(false);
    for (const mount of info.Mounts) expect(await exists('volume', mount.Name!)).toBe(false);
    expect((await runner.listManaged()).some((c) => c.containerId === job.containerId)).toBe(false);
  });

  it('ignores, and refuses to remove, a container that only carries the labels', { timeout: 60_000 }, async () => {
    // What a build step FROM an image with these labels looks like: image labels pass to containers.
    const labels = { 'io.dockyard.managed': 'true', 'io.dockyard.job': String(nextJobId++), 'io.dockyard.instance': instanceId };
    const forged = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
    try {
      expect((await runner.listManaged()).some((c) => c.containerId === forged.id)).toBe(false);
      await expect(runner.remove(forged.id)).rejects.toThrow(/not a Dockyard job container/);
    } finally {
      await forged.remove({ force: true });
    }
  });

  it('leaves nothing behind when the start fails', { timeout: 60_000 }, async () => {
    const s = spec(['true'], { inbox: [{ name: 'missing', path: path.join(workDir, 'does-not-exist') }] });
    await expect(runner.start(s, () => {})).rejects.toThrow(/ENOENT/);
    const left = await docker.listContainers({ all: true, filters: { label: [`io.dockyard.job=${s.jobId}`] } });
    const volumes = await docker.listVolumes({ filters: { label: [`io.dockyard.job=${s.jobId}`] } });
    expect(left).toEqual([]);
    expect(volumes.Volumes ?? []).toEqual([]);
  });

  it('streams a large inbox file', { timeout: 120_000 }, async () => {
    const big = path.join(workDir, 'big.bin');
    const content = Buffer.alloc(32 * MiB, 'dockyard');
    await writeFile(big, content);
    const before = Date.now();
    const { exit, output } = await run('sha256sum big.bin', { inbox: [{ name: 'big.bin', path: big }] });
    console.info(`a job with a 32 MiB inbox file took ${Date.now() - before} ms`);
    expect(exit.exitCode).toBe(0);
    expect(output.stdout).toBe(`${sha256(content)}  big.bin\n`);
  });

  it('refuses an inbox name with a slash before creating anything', { timeout: 60_000 }, async () => {
    await expect(runner.start(spec(['true'], { inbox: [{ name: '../x', path: '/etc/hostname' }] }), () => {})).rejects.toThrow(/not acceptable/);
  });
});
