// The baselines: the same work done on the Docker engine API directly (dockerode), as a careful
// client would do it without Dockyard. Containers made here carry a bench label and a name of their
// own, so that no Dockyard instance (and no cleanup of anyone else's) ever mistakes them for its own.
import { readFile } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import { parseConfig } from '../../src/config.ts';
import { jobContainerOptions } from '../../src/runner/docker/job-template.ts';
import { LineSplitter } from '../../src/domain/logs/line-splitter.ts';

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });
export const BENCH_LABEL = 'io.dockyard.bench';

let serial = 0;
let runLabel = 'unset';

/** Labels this run's containers and images (removed at the end by `removeBenchObjects`). */
export function setRunLabel(value: string): void {
  runLabel = value;
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
  return { ...options, WorkingDir: '/', Labels: { [BENCH_LABEL]: runLabel } };
}

/** Splits an attach stream's stdout into lines (the same splitter Dockyard uses). */
export function attachLines(container: Docker.Container, onLine: (line: string, arrivedAt: number) => void): Promise<{ ended: Promise<void> }> {
  return container.attach({ stream: true, stdout: true, stderr: true, logs: false }).then((stream) => {
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
    const ended = new Promise<void>((resolve, reject) => {
      const finish = () => {
        for (const line of splitter.end()) onLine(line, Date.now());
        resolve();
      };
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', reject);
    });
    return { ended };
  });
}

/** Create, attach, start, wait for the exit and the end of the output, remove: one raw run of a job. */
export async function runRaw(image: string, command: string[], onLine: (line: string, arrivedAt: number) => void = () => {}): Promise<{ exitCode: number }> {
  const container = await docker.createContainer(rawJobOptions(image, command));
  try {
    const { ended } = await attachLines(container, onLine);
    await container.start();
    const [exit] = (await Promise.all([container.wait(), ended])) as [{ StatusCode: number }, void];
    return { exitCode: exit.StatusCode };
  } finally {
    await container.remove({ force: true, v: true });
  }
}

/** Removes what this run left on the engine (containers and images with its label). */
export async function removeBenchObjects(): Promise<void> {
  const filters = JSON.stringify({ label: [`${BENCH_LABEL}=${runLabel}`] });
  for (const c of await docker.listContainers({ all: true, filters })) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
  for (const i of await docker.listImages({ filters })) await docker.getImage(i.Id).remove({ force: true }).catch(() => {});
}

/** The pid of dockerd (for its RSS in the uploads baseline), or null when it cannot be read. */
export async function dockerdPid(): Promise<number | null> {
  const pid = Number((await readFile('/var/run/docker.pid', 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}
