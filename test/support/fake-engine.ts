// Fakes of the two ports below the domain (src/runner/engine.ts, src/runner/jobs.ts), for tests of
// pipeline and build semantics that need no Docker: they run in milliseconds. The real adapters are
// tested against the real engine elsewhere; these only have to keep the ports' promises.
//
// A fake job's command is a little script of pairs, e.g. `out hello sleep 200 exit 3`:
//   out <text>       a line on stdout       err <text>     a line on stderr
//   sleep <ms>       waits (a stop ends it: exit 143)
//   exit <code>      ends with that code    file <name>=<content>   leaves a file in /outbox
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerEngine, EngineImage, EngineInfo, ImageBuildSpec, RegistryAuth } from '../../src/runner/engine.ts';
import type {
  JobContainerSpec,
  JobRunner,
  ManagedContainer,
  ManagedVolume,
  OutboxCaps,
  OutboxFile,
  OutputStream,
  ResourceUsage,
  RunningJob,
} from '../../src/runner/jobs.ts';

const fakeId = () => `sha256:${randomBytes(32).toString('hex')}`;

/** Images by id and by `name:tag`; `busybox:latest` exists from the start. */
export class FakeEngine implements ContainerEngine {
  readonly images = new Map<string, EngineImage>();
  readonly #names = new Map<string, string>();
  builds = 0;

  constructor(baseImages: string[] = ['busybox:latest']) {
    for (const name of baseImages) this.#add(name);
  }

  #add(name: string): EngineImage {
    const image = { id: fakeId(), sizeBytes: 1000, repoTags: [name], labels: {}, onBuild: [] };
    this.images.set(image.id, image);
    this.#names.set(name, image.id);
    return image;
  }

  async info(): Promise<EngineInfo> {
    return { name: 'fake', version: '0', apiVersion: '0' };
  }

  async ping(): Promise<void> {}

  async buildImage(spec: ImageBuildSpec, onOutput: (text: string) => void): Promise<{ imageId: string }> {
    for await (const _chunk of spec.context) {
      // the context is read, as the engine would
    }
    this.builds++;
    onOutput('Step 1/1 : FROM (fake)\n');
    const image: EngineImage = { id: fakeId(), sizeBytes: 2000, repoTags: spec.tags, labels: { ...spec.labels, ...spec.serviceLabels }, onBuild: [] };
    this.images.set(image.id, image);
    for (const tag of spec.tags) this.#names.set(tag, image.id);
    return { imageId: image.id };
  }

  async inspectImage(reference: string): Promise<EngineImage | null> {
    return this.images.get(reference) ?? this.images.get(this.#names.get(reference) ?? '') ?? null;
  }

  async tagImage(imageId: string, repository: string, tag: string): Promise<void> {
    this.#names.set(`${repository}:${tag}`, imageId);
  }

  async pushImage(_repository: string, _tag: string, _auth: RegistryAuth | null, _signal: AbortSignal, onOutput: (text: string) => void): Promise<{ digest: string | null }> {
    onOutput('pushed (fake)\n');
    return { digest: fakeId() };
  }

  async removeImage(reference: string): Promise<void> {
    const id = (await this.inspectImage(reference))?.id;
    if (id) this.images.delete(id);
  }

  async untagImage(reference: string): Promise<void> {
    this.#names.delete(reference);
  }

  async listImagesWithLabel(label: string): Promise<EngineImage[]> {
    return [...this.images.values()].filter((image) => label in image.labels);
  }

  async allowsPlainHttp(): Promise<boolean> {
    return true;
  }

  async removeRepository(repository: string): Promise<number> {
    const names = [...this.#names.keys()].filter((name) => name.startsWith(`${repository}:`));
    names.forEach((name) => this.#names.delete(name));
    return names.length;
  }

  async removeUntaggedImage(): Promise<boolean> {
    return false;
  }
}

interface FakeContainer {
  spec: JobContainerSpec;
  running: boolean;
  files: Map<string, string>;
  stop: () => void;
}

/** Runs fake job scripts; records what ran, when, and how many ran at once. */
export class FakeJobRunner implements JobRunner {
  readonly containers = new Map<string, FakeContainer>();
  /** Job ids in the order they started. */
  readonly started: number[] = [];
  running = 0;
  maxRunning = 0;

  async start(spec: JobContainerSpec, onOutput: (stream: OutputStream, chunk: string) => void): Promise<RunningJob> {
    const containerId = randomBytes(32).toString('hex');
    let stopRequested: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
    const container: FakeContainer = { spec, running: true, files: new Map(), stop: () => stopRequested() };
    this.containers.set(containerId, container);
    this.started.push(spec.jobId);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const exited = (async () => {
      const script = spec.command;
      let exitCode = 0;
      for (let i = 0; i + 1 < script.length; i += 2) {
        const [op, arg] = [script[i]!, script[i + 1]!];
        if (op === 'out' || op === 'err') onOutput(op === 'out' ? 'stdout' : 'stderr', `${arg}\n`);
        else if (op === 'file') container.files.set(arg.split('=')[0]!, arg.split('=').slice(1).join('='));
        else if (op === 'exit') {
          exitCode = Number(arg);
          break;
        } else if (op === 'sleep') {
          const ended = await Promise.race([new Promise((resolve) => setTimeout(() => resolve('slept'), Number(arg))), stopped.then(() => 'stopped')]);
          if (ended === 'stopped') {
            exitCode = 143;
            break;
          }
        }
      }
      container.running = false;
      this.running--;
      return { exitCode, oomKilled: false };
    })();
    return {
      containerId,
      exited,
      usage: (): ResourceUsage => ({ cpuSeconds: 0, peakMemoryBytes: 0, bytesRead: 0, bytesWritten: 0 }),
      stop: async () => container.stop(),
    };
  }

  async collectOutbox(containerId: string, destDir: string, _caps: OutboxCaps): Promise<OutboxFile[]> {
    const files = this.containers.get(containerId)?.files ?? new Map<string, string>();
    await mkdir(destDir, { recursive: true });
    const results: OutboxFile[] = [];
    for (const [name, content] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
      await writeFile(path.join(destDir, name), content);
      results.push({ path: name, size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') });
    }
    return results;
  }

  async remove(containerId: string): Promise<void> {
    this.containers.delete(containerId);
  }

  async listManaged(): Promise<ManagedContainer[]> {
    return [...this.containers].map(([containerId, c]) => ({ containerId, jobId: c.spec.jobId, instanceId: c.spec.instanceId, running: c.running }));
  }

  async discard(containerId: string): Promise<void> {
    this.containers.get(containerId)?.stop();
    this.containers.delete(containerId);
  }

  async listManagedVolumes(): Promise<ManagedVolume[]> {
    return [];
  }

  async removeVolume(): Promise<boolean> {
    return true;
  }
}
