// Extracts an uploaded or downloaded .tar / .tar.gz into an empty directory, treating it as hostile:
// every name is normalised and checked, nothing is ever written through a symlink, links must stay
// inside, devices and FIFOs are refused, and the size/count caps hold however the archive is built.
import { constants } from 'node:fs';
import { chmod, link, lstat, mkdir, open, realpath, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { DomainError } from '../../errors.ts';
import type { ContextLimits } from './limits.ts';
import { isMissing, quote, resolveInside } from './paths.ts';
import { drained } from '../../../util/drained.ts';

type Extract = ReturnType<typeof tar.extract>;
type Entry = Extract extends AsyncIterable<infer E> ? E : never;
type Header = Entry['header'];

const GZIP_MAGIC = [0x1f, 0x8b];

function invalid(message: string): DomainError {
  return new DomainError('INVALID_BUILD_CONTEXT', message);
}

function tooLarge(message: string): DomainError {
  return new DomainError('TOO_LARGE', message);
}

/** Extracts the archive `input` (plain or gzip, told by its first bytes) into the empty directory `dir`. */
export async function extractTarball(input: NodeJS.ReadableStream, dir: string, limits: ContextLimits): Promise<void> {
  const writer = new EntryWriter(await realpath(dir), limits);
  const raw = Readable.from(input, { objectMode: false });
  const extract = tar.extract();
  const feeding = feed(raw, extract, limits).then(
    () => null,
    (err: unknown) => {
      extract.destroy(err instanceof Error ? err : new Error(String(err)));
      return err;
    },
  );
  try {
    for await (const entry of extract) await writer.write(entry);
    await writer.checkSymlinks();
  } catch (err) {
    extract.destroy();
    raw.destroy(); // stop reading the rest of an upload we have refused
    throw archiveError(err, await feeding);
  }
  const feedError = await feeding;
  if (feedError !== null) throw archiveError(feedError, null);
}

/**
 * Our own refusals win; errors from the host (they carry a syscall) stay unexpected; anything else the
 * tar parser or zlib says means a broken archive.
 */
function archiveError(err: unknown, feedError: unknown): unknown {
  if (err instanceof DomainError) return err;
  if (feedError instanceof DomainError) return feedError;
  if (err instanceof Error && 'syscall' in err) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return invalid(`The archive is truncated or corrupt (${detail}).`);
}

// ---------------------------------------------------------------------------------------------------
// Bytes in: the raw stream, capped; gunzipped when it starts with the gzip magic, capped again.

async function feed(raw: Readable, extract: Extract, limits: ContextLimits): Promise<void> {
  for await (const chunk of await archiveBytes(raw, limits)) {
    if (extract.destroyed) return;
    if (!extract.write(chunk)) await drained(extract);
  }
  extract.end(undefined); // (streamx types insist on an argument)
}

async function archiveBytes(input: Readable, limits: ContextLimits): Promise<AsyncIterable<Buffer>> {
  const raw = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head = await readHead(raw);
  if (head.buffer.length === 0) throw invalid('The archive is empty.');
  const source = capped(replay(head, raw), limits.maxArchiveBytes, 'The archive is over the size cap');
  if (!isGzip(head.buffer)) return source;
  // Headers and padding come on top of the file contents: allow for them, then let the entry sizes decide.
  const expandedCap = limits.maxExpandedBytes + limits.maxEntries * 4096 + 2 ** 20;
  const gunzip = createGunzip();
  pipeline(source, gunzip).catch(() => {}); // a failure destroys gunzip, which the reader sees
  return capped(gunzip, expandedCap, 'The archive expands past the size cap');
}

/** Reads until at least two bytes are known (or the stream ends), to look for the gzip magic. */
async function readHead(raw: AsyncIterator<Buffer>): Promise<{ buffer: Buffer; done: boolean }> {
  let buffer = Buffer.alloc(0);
  while (buffer.length < GZIP_MAGIC.length) {
    const next = await raw.next();
    if (next.done) return { buffer, done: true };
    buffer = Buffer.concat([buffer, next.value]);
  }
  return { buffer, done: false };
}

async function* replay(head: { buffer: Buffer; done: boolean }, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (head.buffer.length > 0) yield head.buffer;
  if (head.done) return;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

async function* capped(source: AsyncIterable<Buffer>, max: number, message: string): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > max) throw tooLarge(`${message} (${max} bytes).`);
    yield chunk;
  }
}

function isGzip(head: Buffer): boolean {
  return head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
}


// ---------------------------------------------------------------------------------------------------
// Entries out: one checked write per archive entry.

/** Normalises an archive entry name ('./a//b/' becomes 'a/b', '' is the root) and applies the name rules. */
export function entryPath(name: string, limits: ContextLimits): string {
  const refuse = (why: string) => invalid(`Archive entry ${quote(name)} is not accepted: ${why}.`);
  if (name.includes('\0')) throw refuse('its name contains a NUL byte');
  if (name.includes('\\')) throw refuse('its name contains a backslash');
  if (name.startsWith('/')) throw refuse('absolute names are not allowed');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse("'..' is not allowed in names");
  const rel = parts.join('/');
  if (Buffer.byteLength(rel) > limits.maxPathLength) throw refuse(`the name is longer than ${limits.maxPathLength} bytes`);
  if (parts.length > limits.maxDepth) throw refuse(`it is deeper than ${limits.maxDepth} directories`);
  return rel;
}

function fileMode(mode: number | undefined): number {
  return (mode ?? 0) & 0o111 ? 0o755 : 0o644;
}

class EntryWriter {
  readonly #root: string;
  readonly #limits: ContextLimits;
  /** Directories known to be real directories (not symlinks), relative to the root. */
  readonly #dirs = new Set<string>(['']);
  readonly #symlinks: string[] = [];
  #entries = 0;
  #bytes = 0;

  constructor(root: string, limits: ContextLimits) {
    this.#root = root;
    this.#limits = limits;
  }

  async write(entry: Entry): Promise<void> {
    try {
      await this.#write(entry);
    } catch (err) {
      throw nameError(err, entry.header.name);
    }
  }

  async #write(entry: Entry): Promise<void> {
    const header = entry.header;
    this.#count(header);
    const rel = entryPath(header.name, this.#limits);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.#file(rel, header, entry);
      case 'directory':
        await this.#directory(rel);
        return drain(entry);
      case 'symlink':
        await this.#symlink(rel, header);
        return drain(entry);
      case 'link':
        await this.#hardlink(rel, header);
        return drain(entry);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        throw invalid(`Archive entry ${quote(header.name)} is a ${header.type}: devices and FIFOs are not allowed.`);
      default:
        throw invalid(`Archive entry ${quote(header.name)} has an unsupported type.`);
    }
  }

  /** Re-checks every symlink once all are in place: a later link can change where an earlier one leads. */
  async checkSymlinks(): Promise<void> {
    for (const rel of this.#symlinks) await this.#checkSymlink(rel);
  }

  #count(header: Header): void {
    this.#entries += 1;
    if (this.#entries > this.#limits.maxEntries) throw tooLarge(`The archive has more than ${this.#limits.maxEntries} entries.`);
    if (header.type !== 'file' && header.type !== 'contiguous-file') return;
    this.#bytes += header.size;
    if (this.#bytes > this.#limits.maxExpandedBytes) {
      throw tooLarge(`The archive expands past the size cap (${this.#limits.maxExpandedBytes} bytes).`);
    }
  }

  #abs(rel: string): string {
    return path.join(this.#root, rel);
  }

  async #file(rel: string, header: Header, entry: Entry): Promise<void> {
    if (rel === '') throw invalid(`Archive entry ${quote(header.name)} is a file at the root.`);
    await this.#prepare(rel);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await open(this.#abs(rel), flags, 0o600);
    try {
      for await (const chunk of entry) await writeAll(handle, chunk as Buffer);
      await handle.chmod(fileMode(header.mode));
    } finally {
      await handle.close();
    }
  }

  /** Creates `rel` and its parents as real directories (mode 0755), refusing to pass through a symlink. */
  async #directory(rel: string): Promise<void> {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 1; i <= parts.length; i += 1) {
      const sub = parts.slice(0, i).join('/');
      if (this.#dirs.has(sub)) continue;
      await this.#makeDirectory(sub);
      this.#dirs.add(sub);
    }
  }

  async #makeDirectory(sub: string): Promise<void> {
    const stat = await lstat(this.#abs(sub)).catch((err: unknown) => (isMissing(err) ? null : Promise.reject(err)));
    if (stat === null) {
      await mkdir(this.#abs(sub));
      await chmod(this.#abs(sub), 0o755);
    } else if (stat.isSymbolicLink()) {
      throw invalid(`Archive path ${quote(sub)} is a symlink, and entries may not be written through symlinks.`);
    } else if (!stat.isDirectory()) {
      throw invalid(`Archive path ${quote(sub)} is used both as a file and as a directory.`);
    }
  }

  /** Makes the parents of `rel` and clears the way for a new non-directory entry there (a later entry wins). */
  async #prepare(rel: string): Promise<void> {
    await this.#directory(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
    const stat = await lstat(this.#abs(rel)).catch((err: unknown) => (isMissing(err) ? null : Promise.reject(err)));
    if (stat === null) return;
    if (stat.isDirectory()) throw invalid(`Archive path ${quote(rel)} is used both as a directory and as a file.`);
    await unlink(this.#abs(rel));
  }

  async #symlink(rel: string, header: Header): Promise<void> {
    const target = header.linkname ?? '';
    const refuse = (why: string) => invalid(`Archive symlink ${quote(header.name)} -> ${quote(target)} is not accepted: ${why}.`);
    if (rel === '') throw refuse('it would replace the root');
    if (target === '' || target.includes('\0')) throw refuse('its target is empty or malformed');
    if (target.startsWith('/')) throw refuse('absolute targets are not allowed');
    await this.#prepare(rel);
    await symlink(target, this.#abs(rel));
    this.#symlinks.push(rel);
    await this.#checkSymlink(rel);
  }

  async #checkSymlink(rel: string): Promise<void> {
    if ((await resolveInside(this.#root, rel)) === null) {
      throw invalid(`Archive symlink ${quote(rel)} points outside the archive.`);
    }
  }

  /** A hard link must name a regular file extracted earlier, by a path that goes through no symlink. */
  async #hardlink(rel: string, header: Header): Promise<void> {
    const name = header.linkname ?? '';
    const refuse = (why: string) => invalid(`Archive hard link ${quote(header.name)} -> ${quote(name)} is not accepted: ${why}.`);
    let target: string;
    try {
      target = entryPath(name, this.#limits);
    } catch {
      throw refuse('its target is outside the archive');
    }
    if (rel === '' || target === '' || rel === target) throw refuse('it names the root or itself');
    if ((await resolveInside(this.#root, target)) !== target) throw refuse('its target goes through a symlink');
    const stat = await lstat(this.#abs(target)).catch(() => null);
    if (!stat?.isFile()) throw refuse('its target is not a regular file earlier in the archive');
    await this.#prepare(rel);
    await link(this.#abs(target), this.#abs(rel));
  }
}

/** File-system refusals caused by the entry's name are the archive's fault; the rest are the host's. */
const NAME_ERRORS = new Set(['ENAMETOOLONG', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EINVAL', 'EILSEQ']);

function nameError(err: unknown, name: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof DomainError || code === undefined || !NAME_ERRORS.has(code)) return err;
  return invalid(`Archive entry ${quote(name)} could not be extracted (${code}).`);
}

async function writeAll(handle: Awaited<ReturnType<typeof open>>, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset);
    offset += bytesWritten;
  }
}

async function drain(entry: Entry): Promise<void> {
  for await (const _ of entry) {
    // entries other than files carry no data worth keeping
  }
}
