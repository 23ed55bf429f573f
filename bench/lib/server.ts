// The Dockyard server under test, as a child process (`node src/main.ts`): its own event loop, its own
// memory figures in /proc/<pid>/status, its output in a log file. And the scratch database it uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface ServerOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Scratch directory of this bench run; each server gets DATA_DIR and a log file under it. */
  workDir: string;
  instanceId: string;
  secretKey: string;
  /** Settings on top of the bench defaults (JOB_CONCURRENCY, UPLOAD_MAX_MB…). */
  env?: Record<string, string>;
  /** Write a V8 CPU profile of the server into this directory (written when it exits). */
  cpuProfileDir?: string | undefined;
  label: string;
}

export interface DockyardServer {
  pid: number;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  logFile: string;
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
  const args = [...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : []), 'src/main.ts'];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Children still running when the bench is interrupted: killed on exit, by their own pid only. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

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
