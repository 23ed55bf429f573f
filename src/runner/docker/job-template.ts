// The fixed server-side template of job containers (and of the never-started "loader" that fills the
// inbox, and prepares the outbox for a job user other than root). Pure functions: a test compares their
// output with an inspected container field by field.
// No user value becomes an engine parameter except the image id, Cmd, Env values and inbox contents.
import type Docker from 'dockerode';
import type { JobContainerSpec } from '../jobs.ts';

export const LABEL = {
  managed: 'io.dockyard.managed',
  job: 'io.dockyard.job',
  owner: 'io.dockyard.owner',
  instance: 'io.dockyard.instance',
  /** `loader` on the loader container, for operators; listManaged reports a loader left by a crash as a stopped container of its job. */
  role: 'io.dockyard.role',
} as const;

export const INBOX = '/inbox';
export const OUTBOX = '/outbox';
/** Largest single file a job may write (RLIMIT_FSIZE). */
export const FILE_SIZE_LIMIT = 2 ** 30;
export const OPEN_FILES_LIMIT = 1024;
export const SHM_BYTES = 64 * 2 ** 20;
export const OOM_SCORE_ADJ = 500;
/** The /inbox of a job without attachments: an empty tmpfs, read-only like the volume it replaces. */
export const EMPTY_INBOX_TMPFS = 'ro,nosuid,nodev,noexec,size=4096,mode=755';

export interface JobVolumes {
  /** null: the job has no attachments, and /inbox is an empty read-only tmpfs (no volume to make, fill and remove). */
  inbox: string | null;
  /**
   * null: an anonymous volume, which the engine makes with the container and removes with it (one request
   * fewer each way). Named when a loader has to prepare it before the job container exists.
   */
  outbox: string | null;
}

export interface JobTemplateSettings {
  /** Name of the container (`dockyard-job-<jobId>-<runId>`). */
  name: string;
  volumes: JobVolumes;
  /** A user the admin forces (`65534:65534`), or null to keep the image's own. */
  user: string | null;
  /**
   * The image's VOLUME paths. The engine would give each an anonymous volume: writable disk past the
   * read-only root, with no size limit. Each gets a tmpfs of the /tmp size instead (counted in the memory limit).
   */
  imageVolumes?: string[];
}

/**
 * Names of one start of a job: the run id (random) keeps a retried job, or two services sharing an
 * engine with overlapping job ids, from ever meeting a stale volume.
 */
export function jobNames(jobId: number, runId: string): { container: string; loader: string; volumes: { inbox: string; outbox: string } } {
  const base = `dockyard-job-${jobId}-${runId}`;
  return { container: base, loader: `${base}-loader`, volumes: { inbox: `${base}-inbox`, outbox: `${base}-outbox` } };
}

/**
 * Whether a container is one this template made: its name is ours and matches its job label. Labels alone
 * do not tell: a container inherits its image's labels, and a Dockerfile may set any (io.dockyard.managed=true
 * included), so a build step FROM such an image carries them too.
 */
export function isJobContainer(name: string, labels: Record<string, string>): boolean {
  const match = /^\/?dockyard-job-(\d+)-[0-9a-f]{8}(-loader)?$/.exec(name);
  return match !== null && labels[LABEL.managed] === 'true' && labels[LABEL.job] === match[1];
}

/**
 * Whether a volume is one made for a job container: labelled as such (labels reach a volume only through
 * the template's mounts: an image's or a build step's volumes get none), and named by jobNames for the same
 * job, or anonymous (the outbox the engine makes with the container: 64 hex digits).
 */
export function isJobVolume(name: string, labels: Record<string, string>): boolean {
  const job = labels[LABEL.job];
  if (labels[LABEL.managed] !== 'true' || job === undefined || !/^\d+$/.test(job)) return false;
  const named = /^dockyard-job-(\d+)-[0-9a-f]{8}-(inbox|outbox)$/.exec(name);
  return named ? named[1] === job : /^[0-9a-f]{64}$/.test(name);
}

export function jobLabels(spec: Pick<JobContainerSpec, 'jobId' | 'ownerId' | 'instanceId'>): Record<string, string> {
  return {
    [LABEL.managed]: 'true',
    [LABEL.job]: String(spec.jobId),
    [LABEL.owner]: String(spec.ownerId),
    [LABEL.instance]: spec.instanceId,
  };
}

/** The tmpfs options of /tmp. runc gives the tmpfs the mode of the image's /tmp, so `mode` only holds on images whose /tmp is 1777; `uid`/`gid` do hold. */
export function tmpfsOptions(tmpBytes: number, user: string | null): string {
  const owner = user && /^\d+:\d+$/.test(user) ? `,uid=${user.split(':')[0]},gid=${user.split(':')[1]}` : '';
  return `rw,nosuid,nodev,noexec,size=${tmpBytes},mode=1777${owner}`;
}

export function jobContainerOptions(spec: JobContainerSpec, settings: JobTemplateSettings): Docker.ContainerCreateOptions {
  return {
    name: settings.name,
    Image: spec.image,
    Cmd: spec.command,
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    ...(settings.user ? { User: settings.user } : {}),
    WorkingDir: INBOX,
    Labels: jobLabels(spec),
    NetworkDisabled: true,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    StopSignal: 'SIGTERM',
    StopTimeout: spec.limits.stopGraceSeconds,
    HostConfig: jobHostConfig(spec, settings),
  };
}

function jobHostConfig(spec: JobContainerSpec, settings: JobTemplateSettings): Docker.HostConfig {
  const { limits } = spec;
  return {
    Privileged: false,
    CapDrop: ['ALL'],
    CapAdd: [],
    SecurityOpt: ['no-new-privileges:true'],
    ReadonlyRootfs: true,
    Mounts: [
      ...(settings.volumes.inbox !== null ? [volumeMount(settings.volumes.inbox, INBOX, true, spec)] : []),
      volumeMount(settings.volumes.outbox, OUTBOX, false, spec),
    ],
    Tmpfs: {
      ...Object.fromEntries(
        (settings.imageVolumes ?? [])
          .filter((target) => ![INBOX, OUTBOX, '/tmp'].includes(target))
          .map((target) => [target, tmpfsOptions(limits.tmpBytes, settings.user)]),
      ),
      ...(settings.volumes.inbox === null ? { [INBOX]: EMPTY_INBOX_TMPFS } : {}),
      '/tmp': tmpfsOptions(limits.tmpBytes, settings.user),
    },
    Binds: [],
    NetworkMode: 'none',
    PortBindings: {},
    PublishAllPorts: false,
    PidsLimit: limits.pidsLimit,
    Memory: limits.memoryBytes,
    MemorySwap: limits.memoryBytes,
    OomKillDisable: false,
    OomScoreAdj: OOM_SCORE_ADJ,
    NanoCpus: Math.round(limits.cpus * 1e9),
    Ulimits: [
      { Name: 'nofile', Soft: OPEN_FILES_LIMIT, Hard: OPEN_FILES_LIMIT },
      { Name: 'fsize', Soft: FILE_SIZE_LIMIT, Hard: FILE_SIZE_LIMIT },
      { Name: 'core', Soft: 0, Hard: 0 },
    ],
    Init: true,
    AutoRemove: false,
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    IpcMode: 'private',
    ShmSize: SHM_BYTES,
    Devices: [],
  };
}

/**
 * The loader: created from the job's image (never started) with the job's volumes mounted read-write, only
 * so that the engine can extract the inbox archive (and the outbox root's mode) into them. It carries the
 * job labels plus a role.
 */
export function loaderContainerOptions(spec: JobContainerSpec, name: string, volumes: JobVolumes & { outbox: string }): Docker.ContainerCreateOptions {
  return {
    name,
    Image: spec.image,
    Cmd: ['/nonexistent-never-started'],
    Entrypoint: [],
    Labels: { ...jobLabels(spec), [LABEL.role]: 'loader' },
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      Mounts: [...(volumes.inbox !== null ? [volumeMount(volumes.inbox, INBOX, false, spec)] : []), volumeMount(volumes.outbox, OUTBOX, false, spec)],
      AutoRemove: false,
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    },
  };
}

/**
 * NoCopy: the image's own /inbox or /outbox content (if any) is never copied into the volume. The labels
 * are those of a volume the engine makes on the spot (an anonymous one, source null): labelled like the others.
 */
function volumeMount(source: string | null, target: string, readOnly: boolean, spec: JobContainerSpec): Docker.MountSettings {
  return { Type: 'volume', ...(source !== null ? { Source: source } : {}), Target: target, ReadOnly: readOnly, VolumeOptions: { NoCopy: true, Labels: jobLabels(spec) } } as Docker.MountSettings;
}
