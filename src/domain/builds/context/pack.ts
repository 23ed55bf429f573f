// Packs a checked build context directory into the uncompressed tar the Docker build API takes:
// regular files, directories and symlinks that stay inside, in a fixed order with fixed owners, modes
// and times, so that the same directory always gives the same bytes.
import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { DomainError } from '../../errors.ts';
import type { ContextLimits } from './limits.ts';
import { quote, resolveInside } from './paths.ts';
import { drained } from '../../../util/drained.ts';

type Pack = ReturnType<typeof tar.pack>;
type Sink = ReturnType<Pack['entry']>;
type EntryHeader = Parameters<Pack['entry']>[0];

/** Version-control directories at the top of a fetched repository: never part of the context. */
const SKIPPED_AT_TOP = new Set(['.git', '.hg']);

interface Walk {
  pack: Pack;
  root: string;
  limits: ContextLimits;
  entries: number;
  bytes: number;
  dockerfile: GeneratedDockerfile | null;
}

/**
 * The Dockerfile the service wrote, added to the context under its own name and listed in
 * `.dockerignore` (after the user's own lines), so that the engine reads it and then drops it from the
 * context, as the docker CLI does with a Dockerfile from outside the context.
 */
export interface GeneratedDockerfile {
  name: string;
  content: string;
}

const DOCKERIGNORE = '.dockerignore';
const DOCKERIGNORE_MAX = 1024 * 1024;

/** A tar stream of `dir`; it errors with INVALID_BUILD_CONTEXT or TOO_LARGE when the directory breaks a rule. */
export function packContext(dir: string, limits: ContextLimits, dockerfile: GeneratedDockerfile | null = null): NodeJS.ReadableStream {
  const pack = tar.pack();
  fill(pack, dir, limits, dockerfile).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function fill(pack: Pack, dir: string, limits: ContextLimits, dockerfile: GeneratedDockerfile | null): Promise<void> {
  const walk: Walk = { pack, root: await realpath(dir), limits, entries: 0, bytes: 0, dockerfile };
  await addChildren(walk, '');
  if (!dockerfile) return;
  const header = { uid: 0, gid: 0, mtime: new Date(0), mode: 0o644 };
  const ignore = await readIgnoreFile(walk.root);
  const ignored = ignore === null ? `${DOCKERIGNORE}\n${dockerfile.name}\n` : `${ignore}\n${dockerfile.name}\n`;
  pack.entry({ ...header, name: DOCKERIGNORE }, ignored);
  pack.entry({ ...header, name: dockerfile.name }, dockerfile.content);
}

/** The user's `.dockerignore` (a regular file at the top of the context), or null. */
async function readIgnoreFile(root: string): Promise<string | null> {
  const file = path.join(root, DOCKERIGNORE);
  const stat = await lstat(file).catch(() => null);
  if (!stat) return null;
  if (!stat.isFile()) throw new DomainError('INVALID_BUILD_CONTEXT', '.dockerignore must be a regular file.');
  if (stat.size > DOCKERIGNORE_MAX) throw new DomainError('TOO_LARGE', '.dockerignore is over 1 MiB.');
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function addChildren(walk: Walk, rel: string): Promise<void> {
  const names = (await readdir(path.join(walk.root, rel))).sort();
  for (const name of names) {
    if (rel === '' && SKIPPED_AT_TOP.has(name)) continue;
    // Written by fill() instead: the user's .dockerignore with the generated Dockerfile's name added.
    if (rel === '' && walk.dockerfile && (name === DOCKERIGNORE || name === walk.dockerfile.name)) continue;
    if (walk.pack.destroyed) return; // the reader went away
    await addPath(walk, rel === '' ? name : `${rel}/${name}`);
  }
}

async function addPath(walk: Walk, rel: string): Promise<void> {
  const stat = await lstat(path.join(walk.root, rel));
  count(walk, stat.isFile() ? stat.size : 0);
  const header = { name: rel, uid: 0, gid: 0, mtime: new Date(0) };
  if (stat.isDirectory()) {
    await addEntry(walk.pack, { ...header, type: 'directory', mode: 0o755 });
    await addChildren(walk, rel);
  } else if (stat.isFile()) {
    await addFile(walk, { ...header, type: 'file', size: stat.size, mode: stat.mode & 0o111 ? 0o755 : 0o644 });
  } else if (stat.isSymbolicLink()) {
    const linkname = await readlink(path.join(walk.root, rel));
    if (linkname.startsWith('/') || (await resolveInside(walk.root, rel)) === null) {
      throw new DomainError('INVALID_BUILD_CONTEXT', `The symlink ${quote(rel)} -> ${quote(linkname)} points outside the build context.`);
    }
    await addEntry(walk.pack, { ...header, type: 'symlink', linkname, mode: 0o777 });
  } else {
    throw new DomainError('INVALID_BUILD_CONTEXT', `${quote(rel)} is a socket, device or FIFO: not allowed in a build context.`);
  }
}

function count(walk: Walk, bytes: number): void {
  walk.entries += 1;
  walk.bytes += bytes;
  if (walk.entries > walk.limits.maxEntries) {
    throw new DomainError('TOO_LARGE', `The build context has more than ${walk.limits.maxEntries} entries.`);
  }
  if (walk.bytes > walk.limits.maxExpandedBytes) {
    throw new DomainError('TOO_LARGE', `The build context is over the size cap (${walk.limits.maxExpandedBytes} bytes).`);
  }
}

/** An entry without data (directory, symlink); resolves once it is in the stream. */
function addEntry(pack: Pack, header: EntryHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

/** A regular file, streamed from disk; opened without following symlinks, in case it was swapped for one. */
async function addFile(walk: Walk, header: EntryHeader & { size: number }): Promise<void> {
  const handle = await open(path.join(walk.root, header.name), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await new Promise<void>((resolve, reject) => {
      const sink = walk.pack.entry(header, (err) => (err ? reject(err) : resolve()));
      copy(handle, header.size, sink).catch((err: unknown) => {
        sink.destroy(err instanceof Error ? err : new Error(String(err)));
        reject(err);
      });
    });
  } finally {
    await handle.close();
  }
}

async function copy(handle: Awaited<ReturnType<typeof open>>, size: number, sink: Sink): Promise<void> {
  if (size > 0) {
    for await (const chunk of handle.createReadStream({ start: 0, end: size - 1, autoClose: false })) {
      if (!sink.write(chunk)) await drained(sink);
    }
  }
  sink.end(undefined); // (streamx types insist on an argument)
}

