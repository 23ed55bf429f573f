// A Docker engine of the test's own, for tests that stop, kill and restart it: a second dockerd with its
// own socket, data-root, exec-root, pidfile and containerd namespaces (so it shares nothing with the
// main engine), holding a copy of the main engine's busybox:latest. `destroy` stops it and removes
// everything it made (processes in its namespace, mounts, directories).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';

const MAIN_ENGINE = '/var/run/docker.sock';

export interface PrivateEngine {
  /** DOCKER_HOST for Dockyard: `unix:///run/<name>.sock`. */
  host: string;
  docker: Docker;
  readonly running: boolean;
  /** Starts dockerd (again), resolving once it answers. */
  start(): Promise<void>;
  /** SIGTERM, as a service manager stops it: resolves once dockerd has exited. */
  stop(): Promise<void>;
  /** SIGKILL to dockerd alone (its containerd and shims are left to the next start, as after a crash). */
  kill(): Promise<void>;
  /** Stops it, ends every process of its namespace, unmounts and removes its directories. */
  destroy(): Promise<void>;
}

export async function startPrivateEngine(): Promise<PrivateEngine> {
  const name = `dky-${randomBytes(4).toString('hex')}`;
  const socket = `/run/${name}.sock`;
  const execRoot = `/run/${name}`;
  const pidfile = `/run/${name}.pid`;
  const home = path.join(tmpdir(), name);
  const dataRoot = path.join(home, 'data');
  mkdirSync(home, { recursive: true });
  const docker = new Docker({ socketPath: socket });
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const answers = () => docker.ping().then(() => true, () => false);

  const engine: PrivateEngine = {
    host: `unix://${socket}`,
    docker,
    get running() {
      return child !== null;
    },
    async start() {
      if (child) throw new Error('the private engine is running already');
      const log = openSync(path.join(home, 'dockerd.log'), 'a');
      const started = spawn(
        'dockerd',
        ['--bridge=none', '--iptables=false', '-H', `unix://${socket}`, '--data-root', dataRoot, '--exec-root', execRoot, '--pidfile', pidfile,
          '--containerd-namespace', name, '--containerd-plugins-namespace', `${name}-plugins`],
        { stdio: ['ignore', log, log] },
      );
      closeSync(log);
      child = started;
      let gone = false;
      exited = new Promise((resolve) => started.once('exit', () => {
        gone = true;
        if (child === started) child = null;
        resolve();
      }));
      const deadline = Date.now() + 60_000;
      while (!(await answers())) {
        if (gone) throw new Error(`the private dockerd exited at start; see ${home}/dockerd.log`);
        if (Date.now() > deadline) throw new Error(`the private dockerd did not answer within 60 s; see ${home}/dockerd.log`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      if (!child) return;
      child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (!child) return;
      child.kill('SIGKILL');
      await exited;
      // Its containerd dies with it, a moment later, and stays a zombie here (this machine's pid 1 does not
      // reap): the next dockerd would take it for running by its pid file and wait for it in vain. A service
      // manager reaps it; here its pid file goes once it is dead.
      const pidFile = path.join(execRoot, 'containerd', 'containerd.pid');
      const deadline = Date.now() + 15_000;
      for (;;) {
        let pid: number;
        try {
          pid = Number(readFileSync(pidFile, 'utf8').trim());
        } catch {
          break;
        }
        if (!isAlive(pid)) {
          rmSync(pidFile, { force: true });
          break;
        }
        if (Date.now() > deadline) throw new Error(`containerd ${pid} of the private engine did not die with its dockerd`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async destroy() {
      if (child) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 30_000))]);
        if (timedOut) {
          child?.kill('SIGKILL');
          await exited;
        }
      }
      // containerd and its shims run in this engine's namespace only: they are found by it, and ended by pid.
      for (const pid of processesMentioning(name)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      for (const mount of mountsUnder([home, execRoot])) {
        try {
          execFileSync('umount', ['-l', mount]);
        } catch {
          // unmounted with its parent
        }
      }
      for (const target of [home, execRoot, socket, pidfile]) rmSync(target, { recursive: true, force: true });
    },
  };
  try {
    await engine.start();
    await importBusybox(docker);
  } catch (error) {
    await engine.destroy();
    throw error;
  }
  return engine;
}

/** busybox:latest from the main engine (`docker save | docker load`). */
async function importBusybox(docker: Docker): Promise<void> {
  const main = new Docker({ socketPath: MAIN_ENGINE });
  const archive = await main.getImage('busybox:latest').get();
  const response = (await docker.loadImage(archive, { quiet: true })) as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(response, (error) => (error ? reject(error) : resolve())));
  await docker.getImage('busybox:latest').inspect(); // throws when the load did not take
}

/** Pids whose command line names this engine (its dockerd, containerd and shims). */
function processesMentioning(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (command.some((arg) => arg === name || arg.startsWith(`/run/${name}`) || arg.includes(`/${name}/`))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Running, not gone or a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Mount points at or under the given directories, deepest first. */
function mountsUnder(roots: string[]): string[] {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((target) => target.replace(/\\040/g, ' '))
    .filter((target) => roots.some((root) => target === root || target.startsWith(`${root}/`)));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}
