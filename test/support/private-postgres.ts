// A PostgreSQL cluster of a test's own (initdb into a temp dir, run as the postgres user on a free
// port), which the test may stop and start again on the same port without disturbing anything else.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.ts';

const BIN = '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** Stops the server now (immediate shutdown: connections are cut as in a crash or a network loss). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  remove(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dockyard-pg-'));
  chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  execFileSync('runuser', ['-u', 'postgres', '--', `${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { stdio: 'ignore' });
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('runuser', ['-u', 'postgres', '--', `${BIN}/postgres`, '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'], { stdio: 'ignore' });
    await waitForPort(port);
    // Accepting connections, not only listening (the port opens while the server still starts up).
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync(`${BIN}/pg_isready`, ['-h', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error('the private PostgreSQL did not become ready');
  };
  const stop = async () => {
    execFileSync('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', data, 'stop', '-m', 'immediate', '-w'], { stdio: 'ignore' });
    child = null;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    remove: async () => {
      if (child) await stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
