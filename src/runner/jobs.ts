// The port through which the service runs job containers. The job scheduler depends on this interface
// only; `docker/docker-job-runner.ts` is its adapter on the Docker Engine API. Every value here has been
// checked by the domain already: the adapter turns it into engine parameters through a fixed template.

export interface JobLimits {
  memoryBytes: number;
  cpus: number;
  pidsLimit: number;
  /** Size of the tmpfs mounted at /tmp. */
  tmpBytes: number;
  /** Seconds between SIGTERM and SIGKILL when the engine stops the container on its own. */
  stopGraceSeconds: number;
}

export interface JobContainerSpec {
  /** These three become the labels io.dockyard.job, io.dockyard.owner and io.dockyard.instance (with io.dockyard.managed=true). */
  jobId: number;
  ownerId: number;
  instanceId: string;
  /** Engine image id (sha256:…), already checked to be the owner's. */
  image: string;
  /** argv, passed as Cmd: never through a shell by us. */
  command: string[];
  /** Names already validated. */
  env: Record<string, string>;
  /** Host files that appear read-only as /inbox/<name> (names already validated: no '/', no '..'). */
  inbox: { name: string; path: string }[];
  limits: JobLimits;
}

export type OutputStream = 'stdout' | 'stderr';

export interface ResourceUsage {
  cpuSeconds: number;
  peakMemoryBytes: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface JobExit {
  exitCode: number;
  oomKilled: boolean;
}

export interface RunningJob {
  containerId: string;
  /** Resolves once the container has exited AND all its output was delivered to onOutput. */
  exited: Promise<JobExit>;
  /** Latest sampled usage (stats stream while it runs; a final read at exit). */
  usage(): ResourceUsage;
  /** SIGTERM, then SIGKILL after the grace period (docker stop -t); an exited or missing container is fine. */
  stop(graceSeconds: number): Promise<void>;
}

export interface OutboxCaps {
  maxTotalBytes: number;
  maxFiles: number;
  maxFileBytes: number;
}

export interface OutboxFile {
  /** posix, relative to /outbox */
  path: string;
  size: number;
  sha256: string;
}

/** The outbox is over one of its caps: the message says which. */
export class OutboxTooLarge extends Error {
  override name = 'OutboxTooLarge';
}

export interface ManagedContainer {
  containerId: string;
  jobId: number;
  instanceId: string;
  running: boolean;
}

export interface ManagedVolume {
  name: string;
  jobId: number;
  instanceId: string;
}

export interface JobRunner {
  /** Creates the container from the fixed template, puts the inbox in place, attaches output, starts it. */
  start(spec: JobContainerSpec, onOutput: (stream: OutputStream, chunk: string) => void): Promise<RunningJob>;
  /**
   * After exit: copies /outbox out of the container into destDir (regular files and directories only: skips
   * symlinks, hardlinks, devices, FIFOs; normalises names; refuses '..'/absolute), enforcing caps (throws
   * OutboxTooLarge with a clear message). Returns the files, sorted by path.
   */
  collectOutbox(containerId: string, destDir: string, caps: OutboxCaps): Promise<OutboxFile[]>;
  /** Removes the container and its volumes; missing is fine. */
  remove(containerId: string): Promise<void>;
  /** Every container carrying io.dockyard.managed=true (for reconciliation after a restart). */
  listManaged(): Promise<ManagedContainer[]>;
  /** Stops (grace) and removes a container found by listManaged. */
  discard(containerId: string, graceSeconds: number): Promise<void>;
  /**
   * Every volume made for a job (labelled like its container), for the same clean-up: the named ones a
   * start cut short leaves without a container, and the ones a container removed by hand leaves.
   */
  listManagedVolumes(): Promise<ManagedVolume[]>;
  /** Removes a volume found by listManagedVolumes; false when the engine keeps it because a container still uses it. Missing is fine. */
  removeVolume(name: string): Promise<boolean>;
}
