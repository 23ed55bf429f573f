// The port through which the service talks to a container engine. The scheduler and the domain
// depend on this interface only; `docker/` is its adapter on the Docker Engine API.

export interface EngineInfo {
  name: string;
  version: string;
  apiVersion: string;
}

/** Everything a build may set. The adapter turns it into engine parameters through a fixed template. */
export interface ImageBuildSpec {
  /** An uncompressed tar of the build context, made and checked by the service. */
  context: NodeJS.ReadableStream;
  /** Path of the Dockerfile inside the context. */
  dockerfile: string;
  /** Full references (`repository:tag`) the result is tagged with. */
  tags: string[];
  buildArgs: Record<string, string>;
  /** User labels; the adapter adds the service's own. */
  labels: Record<string, string>;
  serviceLabels: Record<string, string>;
  target: string | null;
  noCache: boolean;
  memoryBytes: number;
  cpus: number;
  network: string;
  signal: AbortSignal;
}

export interface EngineImage {
  id: string;
  sizeBytes: number;
  repoTags: string[];
  /** The image's labels (those of its config). */
  labels: Record<string, string>;
  /** ONBUILD triggers it would run in a build that uses it. */
  onBuild: string[];
}

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** The Dockerfile itself failed (a RUN step exited non-zero, an unknown instruction…): the user's to fix. */
export class ImageBuildFailed extends Error {
  override name = 'ImageBuildFailed';
}

/** The registry refused the push (credentials, permissions, name). */
export class ImagePushFailed extends Error {
  override name = 'ImagePushFailed';
}

export interface ContainerEngine {
  /** Version details when the engine answers; throws when it does not. */
  info(): Promise<EngineInfo>;
  /** The cheapest question the engine answers (before work starts: see engine-availability.ts); throws when it does not answer. */
  ping(signal: AbortSignal): Promise<void>;
  /** Builds, streaming each chunk of output to `onOutput`; throws ImageBuildFailed for a failing Dockerfile. */
  buildImage(spec: ImageBuildSpec, onOutput: (text: string) => void): Promise<{ imageId: string }>;
  inspectImage(reference: string): Promise<EngineImage | null>;
  tagImage(imageId: string, repository: string, tag: string): Promise<void>;
  /** Pushes `repository:tag`; returns the manifest digest the registry reported. */
  pushImage(repository: string, tag: string, auth: RegistryAuth | null, signal: AbortSignal, onOutput: (text: string) => void): Promise<{ digest: string | null }>;
  /** Removes an image by id or reference, with all its tags; a missing image is not an error. */
  removeImage(reference: string): Promise<void>;
  /** Removes one name (`repository:tag`) of an image, the image itself only if it was its last; a missing name is not an error. */
  untagImage(reference: string): Promise<void>;
  /** Images carrying a label (any value). */
  listImagesWithLabel(label: string): Promise<EngineImage[]>;
  /** Whether the engine may talk plain HTTP to this registry (`host[:port]`): listed or in an insecure range. */
  allowsPlainHttp(registry: string): Promise<boolean>;
  /**
   * Removes every engine image tagged in this repository (every build of one Dockyard image keeps at
   * least its version tag there). Repositories are unique per user, so unlike ids they cannot name
   * another deployment's images on a shared engine.
   */
  removeRepository(repository: string): Promise<number>;
  /** Removes an image that has no tag left, unless a container uses it; says whether it was removed. */
  removeUntaggedImage(imageId: string): Promise<boolean>;
}
