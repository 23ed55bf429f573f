// The Dockyard server under test, as a child process (`node src/main.ts`): its own event loop, its own
// memory figures in /proc/<pid>/status, its output in a log file. And the scratch database it uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

const REPO = path.resolve(import.meta.dirname, '../..');

export interface ServerOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Scratch directory of this bench run; each server gets DATA_DIR and a log file under it. */
  workDir: string;
  /** Where the code under test is (see source.ts): `node src/main.ts` runs there. */
  sourceRoot: string;
  instanceId: string;
  secretKey: string;
  /** Settings on top of the bench defaults (JOB_CONCURRENCY, UPLOAD_MAX_MB…). */
  env?: Record<string, string>;
  /** Write a V8 CPU profile of the server into this directory (written when it exits). */
  cpuProfileDir?: string | undefined;
  /** Time every engine request and SQL query of the server into this file (see trace.ts). */
  traceFile?: string | undefined;
  label: string;
}

export interface DockyardServer {
  pid: number;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  logFile: string;
  traceFile: string | undefined;
  /** VmRSS and VmHWM (peak) of the server process, in bytes. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** SIGTERM, and waits for the exit (the CPU profile is written then). */
  stop(): Promise<void>;
}

let serial = 0;

export async function startServer(options: ServerOptions): Promise<DockyardServer> {
  const name = `${options.label}-${++serial}`;
  const dataDir = path.join(options.workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const logFile = path.join(options.workDir, `server-${name}.log`);
  const log = createWriteStream(logFile);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'production',
    GRAPHIQL: 'false',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    DATA_DIR: dataDir,
    // Its own id: at start an instance removes the job containers of its id only, never anyone else's.
    INSTANCE_ID: options.instanceId,
    SECRET_KEY: options.secretKey,
    SHUTDOWN_GRACE_MS: '3000',
    JOB_STOP_GRACE_SECONDS: '1',
    ...options.env,
  };
  const args = [
    // Extra node flags for diagnostics (e.g. --heapsnapshot-near-heap-limit=1 --max-old-space-size=400).
    ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : []),
    ...(options.traceFile ? ['--import', path.join(import.meta.dirname, 'trace.ts')] : []),
    'src/main.ts',
  ];
  if (options.traceFile) env.BENCH_TRACE_FILE = options.traceFile;
  const child = spawn(process.execPath, args, { cwd: options.sourceRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        child.stdout.off('data', onData);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    void exited.then(async (code) => reject(new Error(`the server exited with ${code} before listening; see ${logFile}:\n${await readFile(logFile, 'utf8').catch(() => '')}`)));
  });
  liveChildren.add(child);
  return {
    pid: child.pid!,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    logFile,
    traceFile: options.traceFile,
    memory: () => processMemory(child.pid!),
    stop: async () => {
      liveChildren.delete(child);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** Children still running when the bench ends or is interrupted: stopped by their own pid only. */
const liveChildren = new Set<ChildProcess>();
let interruptCleanup: () => Promise<void> = async () => {};

/** What to remove from the engine when the bench is interrupted (Ctrl-C) after the servers have stopped. */
export function onInterrupt(cleanup: () => Promise<void>): void {
  interruptCleanup = cleanup;
}

process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}: stopping the servers (they end their running jobs) and removing this run's containers and images`);
    const exits = [...liveChildren].map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))));
    for (const child of liveChildren) child.kill('SIGTERM');
    const within = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());
    void Promise.race([Promise.all(exits), within(10_000)])
      .then(() => Promise.race([interruptCleanup().catch(() => {}), within(20_000)]))
      .finally(() => process.exit(130));
  });
}

export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Samples VmRSS every `intervalMs` until stopped; returns the highest value seen. */
export function sampleRss(pid: number, intervalMs = 20): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rss } = await processMemory(pid).catch(() => ({ rss: 0 }));
      max = Math.max(max, rss);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return max;
    },
  };
}

/** The newest .cpuprofile in a directory (what --cpu-prof wrote at exit). */
export async function newestProfile(dir: string): Promise<string | null> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length ? path.join(dir, files.at(-1)!) : null;
}

// ---------------------------------------------------------------------------------------------------
// The scratch database: made fresh for each bench run (migrations run when the first server starts).

export async function recreateDatabase(serverUrl: string, name: string): Promise<string> {
  await admin(serverUrl, `drop database if exists "${name}" with (force)`);
  await admin(serverUrl, `create database "${name}"`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}

async function admin(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Runs one query on the bench database (for figures the API does not give, such as row counts). */
export async function query<T extends pg.QueryResultRow>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The API baseline (bare-yoga.ts) as its own process, like Dockyard. */
export async function startBareYoga(logFile: string): Promise<{ pid: number; graphqlUrl: string; stop(): Promise<void> }> {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'bare-yoga.ts')], { cwd: REPO, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(log);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /listening on (http:\/\/\S+)/.exec(chunk.toString());
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`the bare yoga server exited; see ${logFile}`)));
  });
  liveChildren.add(child);
  return {
    pid: child.pid!,
    graphqlUrl: `${url}/graphql`,
    stop: async () => {
      liveChildren.delete(child);
      child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}

/** CPU seconds (user + system) a process has used so far. */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
