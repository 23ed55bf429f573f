// The service as a separate process (`node src/main.ts`, what `npm start` runs), for tests that need
// to stop it the hard way or read what it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((child) => child.kill('SIGKILL')));

export interface ServiceProcess {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** The base URL, once the service says where GraphiQL is; rejects when it exits first. */
  ready: Promise<string>;
}

/** Runs the service with exactly `env` (plus PATH and PORT=0), as a fresh process. */
export function runService(env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['src/main.ts'], { cwd: root, env: { PATH: process.env.PATH!, PORT: '0', ...env } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const match = /GraphiQL at (http:\/\/\S+)\/graphql/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then(({ code }) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  ready.catch(() => {}); // awaited only by the tests that expect a start
  return { child, stdout: () => stdout, exited, ready };
}
