// Runs git or hg for a source fetch: an argv array (never a shell), a clean environment, a time limit
// that kills the whole process group (git starts helpers such as git-remote-https), cancellation
// through an AbortSignal, and failures turned into SOURCE_FETCH_FAILED with the tool's last stderr
// line, redacted. It uses spawn rather than execFile because execFile cannot start a process group.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DomainError } from '../../errors.ts';
import { redactText } from './repository.ts';

export interface ToolOptions {
  /** What to call the step in messages, e.g. "git fetch". */
  step: string;
  cwd?: string;
  env: Record<string, string>;
  /** Epoch milliseconds by which the whole fetch must be done. */
  deadline: number;
  signal?: AbortSignal;
  /** The repository URL, whose credentials must not appear in messages. */
  url: URL;
}

/** Output kept from each stream: stdout is small for the commands used here, and stderr's tail is what counts. */
const MAX_OUTPUT = 2 ** 20;

/** Runs `command args…` and resolves with its stdout. */
export function runTool(command: string, args: string[], opts: ToolOptions): Promise<string> {
  opts.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, detached: true, shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    let stopped: 'timeout' | 'abort' | null = null;
    const stop = (why: 'timeout' | 'abort') => {
      stopped ??= why;
      killGroup(child.pid);
    };
    const timer = setTimeout(() => stop('timeout'), Math.max(1, opts.deadline - Date.now()));
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (outcome: () => void) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      outcome();
    };
    child.once('error', (err: NodeJS.ErrnoException) => finish(() => reject(spawnError(err, opts))));
    child.once('close', (code) =>
      finish(() => {
        if (stopped === 'abort') reject(opts.signal?.reason);
        else if (stopped === 'timeout') reject(fetchFailed(`${opts.step} timed out.`));
        else if (code !== 0) reject(toolError(code, stderr(), opts));
        else resolve(stdout());
      }),
    );
  });
}

/** Keeps the last MAX_OUTPUT bytes of a stream; returns a getter for the text. */
function collect(stream: NodeJS.ReadableStream): () => string {
  let chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > 2 * MAX_OUTPUT) {
      const kept = Buffer.concat(chunks).subarray(-MAX_OUTPUT);
      chunks = [kept];
      size = kept.length;
    }
  });
  return () => Buffer.concat(chunks).toString('utf8');
}

/** The child leads its own process group (detached), so this ends it and every helper it started. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function fetchFailed(message: string): DomainError {
  return new DomainError('SOURCE_FETCH_FAILED', message);
}

function spawnError(err: NodeJS.ErrnoException, opts: ToolOptions): Error {
  if (err.code === 'ENOENT') return new Error(`${opts.step}: the program is not installed on this server`);
  return err;
}

function toolError(code: number | null, stderr: string, opts: ToolOptions): DomainError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const last = lines.at(-1) ?? `exit code ${String(code)}`;
  return fetchFailed(`${opts.step} failed: ${redactText(last, opts.url)}`);
}

/** A throwaway HOME for the tool (no user config, no credential helpers), removed afterwards. */
export async function withTempHome<T>(work: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(path.join(tmpdir(), 'dockyard-fetch-'));
  try {
    return await work(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** The environment every tool run starts from: PATH and a C locale, nothing else inherited. */
export function baseEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_CONFIG_HOME: home, LC_ALL: 'C', LANG: 'C' };
}
