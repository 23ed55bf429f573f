// The baselines: the same work done on the Docker engine API directly (dockerode), as a careful
// client would do it without Dockyard. Containers made here carry a bench label and a name of their
// own, so that no Dockyard instance (and no cleanup of anyone else's) ever mistakes them for its own.
import { readFile } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import { parseConfig } from '../../src/config.ts';
import { jobContainerOptions } from '../../src/runner/docker/job-template.ts';
import { LineSplitter } from '../../src/domain/logs/line-splitter.ts';
import type { TraceEvent } from './trace.ts';

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });
export const BENCH_LABEL = 'io.dockyard.bench';

/** The bench's own engine requests, when traced (the raw side of a breakdown). */
export const rawTrace: TraceEvent[] = [];

/** Times this process's engine requests into rawTrace, the way trace.ts does in the server. */
export function traceRawEngine(): void {
  const modem = docker.modem as unknown as { dial(options: { method: string; path: string }, callback: (...args: unknown[]) => void): void };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const at = Date.now();
    const start = performance.now();
    const what = `${options.method} ${options.path.replace(/\?.*$/, '').replace(/[0-9a-f]{64}/g, ':id')}`;
    dial(options, (...args: unknown[]) => {
      rawTrace.push({ kind: 'engine', at, ms: performance.now() - start, what });
      callback(...args);
    });
  };
}

let serial = 0;
let label = 'unset';

/** Labels this run's containers and images (removed at the end by `removeBenchObjects`). */
export function setRunLabel(value: string): void {
  label = value;
}

export function runLabel(): string {
  return label;
}

/**
 * The job template's container for `image` and `command`: the same limits (the JOB_* defaults) and
 * hardening (no capabilities, read-only root, no network, init, pids/memory/CPU limits), without the
 * /inbox and /outbox volumes that Dockyard adds (a raw engine client has no use for them).
 */
export function rawJobOptions(image: string, command: string[]): Docker.ContainerCreateOptions {
  const jobs = parseConfig({}).jobs;
  const name = `dockyard-bench-${process.pid}-${++serial}`;
  const options = jobContainerOptions(
    {
      jobId: 0,
      ownerId: 0,
      instanceId: 'bench',
      image,
      command,
      env: {},
      inbox: [],
      limits: { memoryBytes: jobs.memoryBytes, cpus: jobs.cpus, pidsLimit: jobs.pidsLimit, tmpBytes: jobs.tmpBytes, stopGraceSeconds: jobs.stopGraceSeconds },
    },
    { name, volumes: { inbox: 'unused', outbox: 'unused' }, user: null },
  );
  delete options.HostConfig!.Mounts;
  return { ...options, WorkingDir: '/', Labels: { [BENCH_LABEL]: label } };
}

/** Demultiplexes an engine output stream (attach or logs, no TTY) and splits its stdout into lines (Dockyard's splitter). */
export function demuxLines(stream: NodeJS.ReadableStream, onLine: (line: string, arrivedAt: number) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  const splitter = new LineSplitter();
  const sink = {
    write(chunk: Buffer) {
      const arrivedAt = Date.now();
      for (const line of splitter.push(decoder.write(chunk))) onLine(line, arrivedAt);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  const discard = { write: () => true } as unknown as NodeJS.WritableStream;
  docker.modem.demuxStream(stream, sink, discard);
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      for (const line of splitter.end()) onLine(line, Date.now());
      resolve();
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', reject);
  });
}

/** Attaches to a container's output (before it starts, so that nothing is missed). */
export async function attachLines(container: Docker.Container, onLine: (line: string, arrivedAt: number) => void): Promise<{ ended: Promise<void> }> {
  const stream = await container.attach({ stream: true, stdout: true, stderr: true, logs: false });
  return { ended: demuxLines(stream, onLine) };
}

/** Create, attach, start, wait for the exit and the end of the output, remove: one raw run of a job. */
export async function runRaw(image: string, command: string[], onLine: (line: string, arrivedAt: number) => void = () => {}): Promise<{ exitCode: number }> {
  const container = await docker.createContainer(rawJobOptions(image, command));
  try {
    const { ended } = await attachLines(container, onLine);
    await container.start();
    const [exit] = (await Promise.all([container.wait(), ended])) as [{ StatusCode: number }, unknown];
    return { exitCode: exit.StatusCode };
  } finally {
    await container.remove({ force: true, v: true });
  }
}

/**
 * Removes what this run left on the engine: containers and images with its label, and the images
 * Dockyard built for the bench user (named `dockyard/<login>/…`; the login is unique to the run).
 * Not through deleteImage: it removes images by a numeric label that other deployments sharing the
 * engine (the test suite's) use too.
 */
export async function removeBenchObjects(login: string | null): Promise<void> {
  const filters = JSON.stringify({ label: [`${BENCH_LABEL}=${label}`] });
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  for (const i of await docker.listImages({ filters })) await docker.getImage(i.Id).remove({ force: true }).catch(() => {});
  if (!login) return;
  const ours = (await docker.listImages()).filter((i) => (i.RepoTags ?? []).some((tag) => tag.startsWith(`dockyard/${login}/`)));
  // Newest first: an image built FROM another of ours goes before its parent.
  for (const image of ours.sort((a, b) => b.Created - a.Created)) {
    for (const tag of image.RepoTags ?? []) await docker.getImage(tag).remove().catch(() => {});
  }
}

/** The pid of dockerd (for its RSS in the uploads baseline), or null when it cannot be read. */
export async function dockerdPid(): Promise<number | null> {
  const pid = Number((await readFile('/var/run/docker.pid', 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * CPU seconds used so far by dockerd and its child processes (containerd, and the reaped archive and
 * shim helpers): the engine's side of a breakdown. Anything else using the engine at the same time
 * (the test suite) counts too, so read differences over a window as approximate.
 */
export async function engineCpuSeconds(): Promise<number | null> {
  const pid = await dockerdPid();
  if (!pid) return null;
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  let ticks = 0;
  for (const p of [pid, ...children]) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14–17 of /proc/<pid>/stat (12–15 after the name).
    ticks += [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  }
  return ticks / 100;
}
