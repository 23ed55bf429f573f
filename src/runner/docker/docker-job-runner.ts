// The JobRunner adapter on the Docker Engine API (dockerode). A job gets a labelled /outbox volume,
// world-writable when the job's user is not root, and, when it has attachments, a labelled /inbox volume
// mounted read-only (without attachments /inbox is an empty read-only tmpfs). Volumes are filled through a
// never-started "loader" container, only when there is something to fill. The job container comes from
// the fixed template in job-template.ts; its output is attached before start, its usage sampled from the
// stats stream, its outbox read back as a hostile tar.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import Docker from 'dockerode';
import tar from 'tar-stream';
import type { JobContainerSpec, JobExit, JobRunner, ManagedContainer, ManagedVolume, OutboxCaps, OutboxFile, OutputStream, ResourceUsage, RunningJob } from '../jobs.ts';
import { extractOutbox } from '../outbox.ts';
import { dockerOptions } from './docker-engine.ts';
import { isJobContainer, isJobVolume, jobContainerOptions, jobLabels, jobNames, LABEL, loaderContainerOptions, OUTBOX } from './job-template.ts';
import type { JobVolumes } from './job-template.ts';
import { drained } from '../../util/drained.ts';

export interface DockerJobRunnerSettings {
  /** A user every job runs as (`65534:65534`), or null for the image's own user. */
  user: string | null;
}

type Pack = ReturnType<typeof tar.pack>;
type OnOutput = (stream: OutputStream, chunk: string) => void;

/** What start needs from an image's config. Image ids are content hashes: the config of one never changes. */
interface ImageConfig {
  user: string;
  volumes: string[];
}

/** Image configs kept (a job's image is read once, not per job); past this many the cache starts over. */
const IMAGE_CACHE_SIZE = 500;

/** What this process knows of a job container it made, until it removes it. */
interface Made {
  name: string;
  /** The named volumes it mounts (an anonymous outbox goes with the container). */
  volumes: string[];
  /** Its loader's removal, running in the background (the volumes cannot go before the loader). */
  loaderRemoval: Promise<void> | null;
  /**
   * The mtime of /outbox just before the start: while it is unchanged nothing was created in /outbox,
   * and collectOutbox skips the engine's archive (a helper process on the engine side).
   */
  outboxBefore: string | null;
  /** The same, read as soon as the container exited (with the exit details): what collectOutbox needs next. */
  outboxAfter: Promise<string> | null;
}

export class DockerJobRunner implements JobRunner {
  readonly docker: Docker;
  readonly #settings: DockerJobRunnerSettings;
  readonly #images = new Map<string, Promise<ImageConfig>>();
  /** By container id. */
  readonly #made = new Map<string, Made>();

  constructor(dockerHost: string, settings: Partial<DockerJobRunnerSettings> = {}) {
    this.docker = new Docker(dockerOptions(dockerHost));
    this.#settings = { user: settings.user ?? null };
  }

  async start(spec: JobContainerSpec, onOutput: OnOutput): Promise<RunningJob> {
    checkInboxNames(spec.inbox);
    const names = jobNames(spec.jobId, randomBytes(4).toString('hex'));
    const image = await this.#imageConfig(spec.image);
    // A fresh volume's root is root's, mode 0755: a root job writes /outbox as it is, any other user needs
    // the loader to make it 1777. Without a loader the outbox is an anonymous volume the engine makes with
    // the container (and removes with it).
    const loader = spec.inbox.length > 0 || !runsAsRoot(this.#settings.user ?? image.user);
    const volumes = loader ? { inbox: spec.inbox.length > 0 ? names.volumes.inbox : null, outbox: names.volumes.outbox } : { inbox: null, outbox: null };
    const made: Made = { name: names.container, volumes: [volumes.inbox, volumes.outbox].filter((name) => name !== null), loaderRemoval: null, outboxBefore: null, outboxAfter: null };
    let containerId: string | null = null;
    try {
      if (loader) await this.#createVolumes(spec, made.volumes);
      const options = jobContainerOptions(spec, { name: names.container, volumes, user: this.#settings.user, imageVolumes: image.volumes });
      // The loader fills the volumes while the job container is being made.
      const [container] = await settled([
        this.docker.createContainer(options),
        loader ? this.#load(spec, names.loader, { inbox: volumes.inbox, outbox: names.volumes.outbox }, made) : null,
      ]);
      containerId = container.id;
      this.#made.set(container.id, made);
      return await runContainer(this.docker, container, onOutput, {
        beforeStart: async () => {
          const mtime = await outboxMtime(container);
          made.outboxBefore = finerThanSeconds(mtime) ? mtime : null;
        },
        afterExit: () => {
          made.outboxAfter = outboxMtime(container);
          made.outboxAfter.catch(() => {}); // collectOutbox reports it, if it is asked
        },
      });
    } catch (error) {
      // Best effort: the first error is the one to report.
      if (containerId) this.#made.delete(containerId);
      await this.#forceRemove(names.container).catch(() => {});
      await made.loaderRemoval;
      await this.#forceRemove(names.loader).catch(() => {});
      await this.#removeVolumes([names.volumes.inbox, names.volumes.outbox]).catch(() => {});
      throw error;
    }
  }

  async collectOutbox(containerId: string, destDir: string, caps: OutboxCaps): Promise<OutboxFile[]> {
    const container = this.docker.getContainer(containerId);
    // Any entry made directly in /outbox (and so any file anywhere under it) changes the root's mtime.
    const made = this.#made.get(containerId);
    if (made?.outboxBefore) {
      const after = made.outboxAfter ?? outboxMtime(container);
      made.outboxAfter = null; // read once: a later collection asks again
      if ((await after) === made.outboxBefore) return [];
    }
    const archive = await container.getArchive({ path: OUTBOX });
    return extractOutbox(archive, destDir, caps, 'outbox');
  }

  async remove(containerId: string): Promise<void> {
    const made = this.#made.get(containerId);
    if (made) {
      // Made here: what it mounts is known, no need to ask the engine.
      await this.#forceRemove(containerId);
      this.#made.delete(containerId);
      if (made.loaderRemoval) {
        await made.loaderRemoval;
        await this.#forceRemove(`${made.name}-loader`); // in case the background removal failed
      }
      return this.#removeVolumes(made.volumes);
    }
    const info = await inspectOrNull(this.docker.getContainer(containerId));
    if (!info) return;
    if (!isJobContainer(info.Name, info.Config.Labels ?? {})) throw new Error(`container ${containerId} is not a Dockyard job container`);
    await this.#forceRemove(info.Id);
    await this.#forceRemove(`${info.Name.replace(/^\//, '')}-loader`); // left behind only by a crash during start
    const volumes = (info.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name?.startsWith('dockyard-job-')).map((m) => m.Name!);
    await this.#removeVolumes(volumes);
  }

  /** Only containers named by this adapter whose job label matches the name (see isJobContainer). */
  async listManaged(): Promise<ManagedContainer[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } });
    return containers
      .filter((c) => c.Names.some((name) => isJobContainer(name, c.Labels)))
      .map((c) => ({
        containerId: c.Id,
        jobId: Number(c.Labels[LABEL.job]),
        instanceId: c.Labels[LABEL.instance] ?? '',
        running: c.State === 'running',
      }));
  }

  async discard(containerId: string, graceSeconds: number): Promise<void> {
    await stopContainer(this.docker.getContainer(containerId), graceSeconds);
    await this.remove(containerId);
  }

  /** Only volumes whose labels and name agree (see isJobVolume). */
  async listManagedVolumes(): Promise<ManagedVolume[]> {
    const { Volumes } = await this.docker.listVolumes({ filters: { label: [`${LABEL.managed}=true`] } });
    // (The engine answers null rather than [] when there are none; Labels is null on a volume without any.)
    return (Volumes ?? [])
      .filter((v) => isJobVolume(v.Name, v.Labels ?? {}))
      .map((v) => ({ name: v.Name, jobId: Number(v.Labels[LABEL.job]), instanceId: v.Labels[LABEL.instance] ?? '' }));
  }

  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).remove();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return true;
      if (statusOf(error) === 409) return false; // in use
      throw error;
    }
  }

  #imageConfig(image: string): Promise<ImageConfig> {
    let config = this.#images.get(image);
    if (!config) {
      if (this.#images.size >= IMAGE_CACHE_SIZE) this.#images.clear();
      config = this.docker
        .getImage(image)
        .inspect()
        .then((info) => ({
          user: info.Config?.User ?? '',
          volumes: Object.keys(info.Config?.Volumes ?? {}).map((target) => path.posix.normalize(target)),
        }));
      // A failed read (the image is gone, the engine is away) is not kept.
      config.catch(() => this.#images.delete(image));
      this.#images.set(image, config);
    }
    return config;
  }

  async #createVolumes(spec: JobContainerSpec, names: string[]): Promise<void> {
    await settled(names.map((name) => this.docker.createVolume({ Name: name, Driver: 'local', Labels: jobLabels(spec) })));
  }

  /**
   * Extracts the inbox archive (which also sets the volume roots' modes) into a loader. The loader is then
   * removed in the background (`made.loaderRemoval`): the job starts without waiting for that.
   */
  async #load(spec: JobContainerSpec, loaderName: string, volumes: JobVolumes & { outbox: string }, made: Made): Promise<void> {
    const loader = await this.docker.createContainer(loaderContainerOptions(spec, loaderName, volumes));
    try {
      // Whichever side fails first stops the other: a failed read aborts the upload, a refused upload
      // destroys the archive (which releases the file being read).
      const abort = new AbortController();
      const pack = tar.pack();
      const fail = (error: unknown) => {
        abort.abort(error);
        pack.destroy(error instanceof Error ? error : new Error(String(error)));
        throw error;
      };
      const filling = fillVolumes(pack, volumes.inbox !== null ? spec.inbox : null).catch(fail);
      const putting = loader.putArchive(pack as unknown as NodeJS.ReadableStream, { path: '/', abortSignal: abort.signal }).catch(fail);
      await Promise.all([putting, filling]);
    } catch (error) {
      await this.#forceRemove(loader.id);
      throw error;
    }
    made.loaderRemoval = this.#forceRemove(loader.id).catch(() => {}); // `remove` tries again by name
  }

  async #forceRemove(nameOrId: string): Promise<void> {
    await ignoreStatus(this.docker.getContainer(nameOrId).remove({ force: true, v: true }), [404]);
  }

  async #removeVolumes(names: string[]): Promise<void> {
    await settled(names.map((name) => ignoreStatus(this.docker.getVolume(name).remove(), [404])));
  }
}

/** Root (uid 0), by name or number; an image without USER runs as root. */
function runsAsRoot(user: string): boolean {
  const name = user.split(':')[0]!.trim();
  return name === '' || name === 'root' || name === '0';
}

/**
 * Whether an mtime the engine reported has a fraction of a second. The engine's filesystem may keep whole
 * seconds only (ext4 with small inodes, ext3): then a job writing within the second of the volume's making
 * would leave the mtime as it was, and the outbox is always read instead. (The engine omits a zero fraction.)
 */
export function finerThanSeconds(mtime: string): boolean {
  return /\.\d*[1-9]/.test(mtime);
}

/** The mtime of /outbox as the engine reports it (to the nanosecond), from a stat without an archive. */
async function outboxMtime(container: Docker.Container): Promise<string> {
  const response = (await container.infoArchive({ path: OUTBOX })) as NodeJS.ReadableStream & { headers: Record<string, string | undefined> };
  response.resume();
  const header = response.headers['x-docker-container-path-stat'];
  const stat = header ? (JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as { mtime?: string }) : {};
  if (!stat.mtime) throw new Error('the engine did not report the state of /outbox');
  return stat.mtime;
}

/**
 * Like Promise.all, but waits for every promise to settle before rejecting with the first error, so that a
 * cleanup after a failure never runs while another part is still making something.
 */
async function settled<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

// ---------------------------------------------------------------------------------------------------
// Inbox: a tar made here, only directories and regular files, owned by root.

function checkInboxNames(inbox: JobContainerSpec['inbox']): void {
  const seen = new Set<string>();
  for (const { name } of inbox) {
    if (!/^[^/\0]+$/.test(name) || name === '.' || name === '..') throw new Error(`inbox name ${JSON.stringify(name)} is not acceptable`);
    if (seen.has(name)) throw new Error(`inbox name ${JSON.stringify(name)} is given twice`);
    seen.add(name);
  }
}

/**
 * `inbox/` 0755 with each file 0444 in it (null: the job has no inbox volume), and `outbox/` 01777 so that
 * any user of the image can write there.
 */
async function fillVolumes(pack: Pack, inbox: JobContainerSpec['inbox'] | null): Promise<void> {
  const owner = { uid: 0, gid: 0, mtime: new Date() };
  if (inbox) await addEntry(pack, { name: 'inbox/', type: 'directory', mode: 0o755, ...owner });
  await addEntry(pack, { name: 'outbox/', type: 'directory', mode: 0o1777, ...owner });
  for (const file of inbox ?? []) await addFile(pack, `inbox/${file.name}`, file.path, owner);
  pack.finalize();
}

function addEntry(pack: Pack, header: Parameters<Pack['entry']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (error) => (error ? reject(error) : resolve()));
  });
}

async function addFile(pack: Pack, name: string, hostPath: string, owner: { uid: number; gid: number; mtime: Date }): Promise<void> {
  const handle = await open(hostPath, 'r');
  try {
    const stats = await handle.stat();
    const size = stats.size;
    if (!stats.isFile()) throw new Error(`inbox file ${hostPath} is not a regular file`);
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ name, type: 'file', mode: 0o444, size, ...owner }, (error) => (error ? reject(error) : resolve()));
      copy(handle, size, sink).catch((error: unknown) => {
        sink.destroy(error instanceof Error ? error : new Error(String(error)));
        reject(error);
      });
    });
  } finally {
    await handle.close();
  }
}

type Sink = ReturnType<Pack['entry']>;

async function copy(handle: Awaited<ReturnType<typeof open>>, size: number, sink: Sink): Promise<void> {
  if (size > 0) {
    for await (const chunk of handle.createReadStream({ start: 0, end: size - 1, autoClose: false })) {
      if (!sink.write(chunk as Buffer)) await drained(sink);
    }
  }
  sink.end(undefined); // (streamx types insist on an argument)
}


// ---------------------------------------------------------------------------------------------------
// A started job: output, usage, exit, stop.

interface RunHooks {
  /** Runs while the output is being attached; the start waits for it. */
  beforeStart: () => Promise<void>;
  /** Called once the container has exited, while its exit details are read. */
  afterExit: () => void;
}

/** Attaches, then starts. */
async function runContainer(docker: Docker, container: Docker.Container, onOutput: OnOutput, hooks: RunHooks): Promise<RunningJob> {
  const [attaching, prepared] = await Promise.allSettled([container.attach({ stream: true, stdout: true, stderr: true, logs: false }), hooks.beforeStart()]);
  if (attaching.status === 'rejected') throw attaching.reason;
  const attached = attaching.value as NodeJS.ReadableStream;
  if (prepared.status === 'rejected') {
    (attached as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw prepared.reason;
  }
  const output = deliverOutput(docker, attached, onOutput);
  try {
    await container.start();
  } catch (error) {
    (attached as NodeJS.ReadWriteStream & { destroy?: () => void }).destroy?.();
    throw error;
  }
  const sampler = new UsageSampler(container);
  return {
    containerId: container.id,
    exited: waitForExit(container, output, sampler, hooks.afterExit),
    usage: () => sampler.usage(),
    stop: (graceSeconds) => stopContainer(container, graceSeconds),
  };
}

/** Demultiplexes the attach stream into utf8 chunks per stream (a character split across frames is kept whole). */
function deliverOutput(docker: Docker, attached: NodeJS.ReadableStream, onOutput: OnOutput): Promise<void> {
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  // demuxStream only calls write() on its sinks.
  const sink = (stream: OutputStream) =>
    ({
      write(chunk: Buffer) {
        const text = decoders[stream].write(chunk);
        if (text) onOutput(stream, text);
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  docker.modem.demuxStream(attached, sink('stdout'), sink('stderr'));
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = decoders[stream].end();
        if (rest) onOutput(stream, rest);
      }
      resolve();
    };
    attached.on('end', finish);
    attached.on('close', finish);
    attached.on('error', (error: Error) => {
      if (done) return;
      done = true;
      reject(error);
    });
  });
}

async function waitForExit(container: Docker.Container, output: Promise<void>, sampler: UsageSampler, afterExit: () => void): Promise<JobExit> {
  const [result] = await Promise.all([waitForStatus(container), output]);
  sampler.finish();
  afterExit();
  const info = await container.inspect();
  return { exitCode: result.StatusCode, oomKilled: info.State.OOMKilled === true };
}

/**
 * `POST /containers/{id}/wait`, its answer read here: dockerode's own wait never settles when the engine
 * drops the connection before answering (it was killed, it crashed), which would leave the job RUNNING
 * for good and hold up a shutdown. A connection closed before the answer is an error of the engine.
 */
function waitForStatus(container: Docker.Container): Promise<{ StatusCode: number }> {
  return new Promise((resolve, reject) => {
    const request = { path: `/containers/${container.id}/wait?`, method: 'POST', isStream: true, options: {}, statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' } };
    (container.modem as { dial: (options: unknown, callback: (error: unknown, response: IncomingMessage) => void) => void }).dial(request, (error, response) => {
      if (error) return reject(error);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(body) as { StatusCode: number });
        } catch {
          reject(new Error(`the engine's answer to wait is unreadable: ${body.slice(0, 200)}`));
        }
      });
      const broke = (why: string) => reject(new Error(`the connection to the engine broke while the job ran (${why})`));
      response.on('error', (error: Error) => broke(error.message));
      response.on('close', () => {
        if (!response.complete) broke('closed before the answer');
      });
    });
  });
}

async function stopContainer(container: Docker.Container, graceSeconds: number): Promise<void> {
  await ignoreStatus(container.stop({ t: graceSeconds }), [304, 404]);
}

interface StatsSample {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; max_usage?: number };
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
}

/**
 * Follows the engine's stats stream and keeps the highest value of each counter. The engine sends a sample
 * at once, then one a second; after the exit it sends zeros (the cgroup is gone) until the container is
 * removed, so the stream is closed at exit. A container that exits before the first sample reports zeros.
 */
class UsageSampler {
  #usage: ResourceUsage = { cpuSeconds: 0, peakMemoryBytes: 0, bytesRead: 0, bytesWritten: 0 };
  #stream: (NodeJS.ReadableStream & { destroy?: () => void }) | null = null;
  #stopped = false;

  constructor(container: Docker.Container) {
    this.#follow(container).catch(() => {
      // Refused for a container already gone, or closed by finish(): keep what is known.
    });
  }

  usage(): ResourceUsage {
    return { ...this.#usage };
  }

  finish(): void {
    this.#stopped = true;
    this.#stream?.destroy?.();
  }

  async #follow(container: Docker.Container): Promise<void> {
    const stream = (await container.stats({ stream: true })) as NodeJS.ReadableStream & { destroy?: () => void };
    if (this.#stopped) return void stream.destroy?.();
    this.#stream = stream;
    let pending = '';
    for await (const chunk of stream) {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.#record(JSON.parse(line) as StatsSample);
    }
  }

  #record(sample: StatsSample): void {
    const io = sample.blkio_stats?.io_service_bytes_recursive ?? [];
    const sum = (op: string) => io.filter((e) => e.op.toLowerCase() === op).reduce((total, e) => total + e.value, 0);
    const memory = sample.memory_stats ?? {};
    const u = this.#usage;
    u.cpuSeconds = Math.max(u.cpuSeconds, (sample.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e9);
    u.peakMemoryBytes = Math.max(u.peakMemoryBytes, memory.max_usage ?? 0, memory.usage ?? 0);
    u.bytesRead = Math.max(u.bytesRead, sum('read'));
    u.bytesWritten = Math.max(u.bytesWritten, sum('write'));
  }
}

// ---------------------------------------------------------------------------------------------------

async function inspectOrNull(container: Docker.Container): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await container.inspect();
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
}

async function ignoreStatus(request: Promise<unknown>, statuses: number[]): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (!statuses.includes(statusOf(error) ?? -1)) throw error;
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}
