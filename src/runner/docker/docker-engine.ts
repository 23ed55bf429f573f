// The ContainerEngine adapter on the Docker Engine API (dockerode). Every engine parameter comes from
// the fixed templates here; user input only fills values that the domain has already checked.
import { BlockList, isIP } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import Docker from 'dockerode';
import type { ContainerEngine, EngineImage, EngineInfo, ImageBuildSpec, RegistryAuth } from '../engine.ts';
import { ImageBuildFailed, ImagePushFailed } from '../engine.ts';
import { withTimeout } from '../../util/with-timeout.ts';

/** Turns DOCKER_HOST (`unix:///path` or `tcp://host:port`) into dockerode options. */
export function dockerOptions(dockerHost: string): Docker.DockerOptions {
  if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) };
  const { hostname, port } = new URL(dockerHost);
  return { host: hostname, port: Number(port), protocol: 'http' };
}

interface ProgressMessage {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

/** The query of `POST /build`: the classic builder (the one that honours memory and CPU limits), no pulls, no cache reuse unless asked. */
export function buildQuery(spec: ImageBuildSpec): Record<string, unknown> {
  return {
    version: '1',
    t: spec.tags,
    dockerfile: spec.dockerfile,
    buildargs: spec.buildArgs,
    labels: { ...spec.labels, ...spec.serviceLabels },
    ...(spec.target ? { target: spec.target } : {}),
    // Never reuse the engine's build cache: it is shared by every user of the engine (a layer one user
    // built could be served to another; CVE-2024-24557). `noCache` is accepted and always holds.
    nocache: true,
    pull: false,
    rm: true,
    forcerm: true,
    networkmode: spec.network,
    memory: spec.memoryBytes,
    memswap: spec.memoryBytes,
    cpuperiod: 100_000,
    cpuquota: spec.cpus * 100_000,
    shmsize: 64 * 2 ** 20,
  };
}

export class DockerEngine implements ContainerEngine {
  readonly docker: Docker;

  constructor(dockerHost: string) {
    this.docker = new Docker(dockerOptions(dockerHost));
  }

  async info(): Promise<EngineInfo> {
    const version = await withTimeout(this.docker.version(), 3000, 'Docker engine version request');
    return { name: 'docker', version: version.Version, apiVersion: version.ApiVersion };
  }

  async ping(signal: AbortSignal): Promise<void> {
    // (The types give ping no options; dockerode takes an abortSignal as for every request.)
    await (this.docker.ping as (options: { abortSignal: AbortSignal }) => Promise<unknown>).call(this.docker, { abortSignal: signal });
  }

  async buildImage(spec: ImageBuildSpec, onOutput: (text: string) => void): Promise<{ imageId: string }> {
    const stream = await this.docker
      .buildImage(spec.context, { ...buildQuery(spec), abortSignal: spec.signal } as Docker.ImageBuildOptions)
      .catch((error: unknown) => {
        // A 4xx is the engine refusing the user's input (a Dockerfile it cannot parse, an unknown stage):
        // the user's to fix. Anything else (5xx, no answer) is the engine's or the service's failure.
        throw isClientError(error) ? new ImageBuildFailed(engineMessage(error)) : error;
      });
    let imageId: string | null = null;
    await readProgress(stream, spec.signal, (message) => {
      if (message.stream) onOutput(message.stream);
      if (message.aux?.ID) imageId = message.aux.ID;
      // A failed build still answers 200: the failure is a message in the stream.
      if (message.error) throw new ImageBuildFailed(message.errorDetail?.message ?? message.error);
    });
    if (!imageId) throw new Error('the engine finished the build without reporting an image id');
    return { imageId };
  }

  async inspectImage(reference: string): Promise<EngineImage | null> {
    try {
      const image = await this.docker.getImage(reference).inspect();
      return { id: image.Id, sizeBytes: image.Size, repoTags: image.RepoTags ?? [], labels: image.Config?.Labels ?? {}, onBuild: image.Config?.OnBuild ?? [] };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  async tagImage(imageId: string, repository: string, tag: string): Promise<void> {
    await this.docker.getImage(imageId).tag({ repo: repository, tag });
  }

  async pushImage(repository: string, tag: string, auth: RegistryAuth | null, signal: AbortSignal, onOutput: (text: string) => void): Promise<{ digest: string | null }> {
    const stream = (await this.docker.getImage(repository).push({
      tag,
      // The engine wants an auth header even for anonymous pushes.
      authconfig: auth ?? { username: '', password: '', serveraddress: repository.split('/')[0]! },
      abortSignal: signal,
    } as Docker.ImagePushOptions)) as NodeJS.ReadableStream;
    let digest: string | null = null;
    await readProgress(stream, signal, (message) => {
      if (message.error) throw new ImagePushFailed(message.errorDetail?.message ?? message.error);
      if (message.aux?.Digest) digest = message.aux.Digest;
      if (message.status && !message.progress) onOutput(`${message.id ? `${message.id}: ` : ''}${message.status}\n`);
    });
    return { digest };
  }

  async allowsPlainHttp(registry: string): Promise<boolean> {
    const info = (await this.docker.info()) as { RegistryConfig?: { IndexConfigs?: Record<string, { Secure?: boolean }>; InsecureRegistryCIDRs?: string[] } };
    const config = info.RegistryConfig ?? {};
    if (config.IndexConfigs?.[registry]?.Secure === false) return true;
    const host = registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    const family = isIP(host);
    if (family === 0) return false;
    const ranges = new BlockList();
    for (const cidr of config.InsecureRegistryCIDRs ?? []) {
      const [network, prefix] = cidr.split('/');
      if (network && prefix && isIP(network)) ranges.addSubnet(network, Number(prefix), isIP(network) === 6 ? 'ipv6' : 'ipv4');
    }
    return ranges.check(host, family === 6 ? 'ipv6' : 'ipv4');
  }

  async removeRepository(repository: string): Promise<number> {
    const images = await this.docker.listImages({ filters: JSON.stringify({ reference: [repository] }) });
    for (const image of images) await this.removeImage(image.Id);
    return images.length;
  }

  async removeUntaggedImage(imageId: string): Promise<boolean> {
    const image = await this.inspectImage(imageId);
    if (!image || image.repoTags.length > 0) return false;
    try {
      // Not forced: the engine refuses while a container (a job still running on it) uses the image.
      await this.docker.getImage(imageId).remove({ noprune: false });
      return true;
    } catch (error) {
      if ([404, 409].includes((error as { statusCode?: number }).statusCode ?? 0)) return false;
      throw error;
    }
  }

  async untagImage(reference: string): Promise<void> {
    try {
      await this.docker.getImage(reference).remove({ noprune: false });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }

  async listImagesWithLabel(label: string): Promise<EngineImage[]> {
    const images = await this.docker.listImages({ filters: JSON.stringify({ label: [label] }) });
    return images.map((image) => ({ id: image.Id, sizeBytes: image.Size, repoTags: (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'), labels: image.Labels ?? {}, onBuild: [] }));
  }

  async removeImage(reference: string): Promise<void> {
    try {
      await this.docker.getImage(reference).remove({ force: true, noprune: false });
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
}

/** Reads the engine's newline-delimited JSON progress stream; a throwing handler ends it with that error. */
function readProgress(stream: NodeJS.ReadableStream, signal: AbortSignal, handle: (message: ProgressMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let failed = false;
    const decoder = new StringDecoder('utf8'); // a character split across chunks stays whole
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      reject(error);
    };
    const onAbort = () => fail(signal.reason ?? new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      const lines = (pending + decoder.write(chunk)).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === '' || failed) continue;
        try {
          handle(JSON.parse(line) as ProgressMessage);
        } catch (error) {
          fail(error instanceof SyntaxError ? new Error(`unreadable engine output: ${line.slice(0, 200)}`) : error);
        }
      }
    });
    stream.on('error', fail);
    stream.on('end', () => {
      signal.removeEventListener('abort', onAbort);
      if (failed) return;
      pending += decoder.end();
      if (pending.trim() !== '') {
        try {
          handle(JSON.parse(pending) as ProgressMessage);
        } catch (error) {
          return fail(error);
        }
      }
      resolve();
    });
  });
}

/** An engine answer in the 4xx range (dockerode's errors carry the status code). */
function isClientError(error: unknown): boolean {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** The engine's own message, without dockerode's "(HTTP code 400) unexpected - " prefix. */
function engineMessage(error: unknown): string {
  const body = (error as { json?: { message?: unknown } }).json;
  if (body && typeof body.message === 'string') return body.message;
  return String((error as Error).message ?? error).replace(/^\(HTTP code \d+\) [^-]*- /, '');
}
