// Reads the tar of a job's /outbox (what the engine's archive endpoint returns) as hostile: only regular
// files and directories are written, symlinks, hardlinks, devices and FIFOs are skipped, names are
// normalised and '..' or absolute names refused, and the caps on files, bytes and single-file size
// hold across the stream whatever the headers claim. Each file's sha256 is computed while it is written.
import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';
import { OutboxTooLarge } from './jobs.ts';
import type { OutboxCaps, OutboxFile } from './jobs.ts';
import { drained } from '../util/drained.ts';

type Extract = ReturnType<typeof tar.extract>;
type Entry = Extract extends AsyncIterable<infer E> ? E : never;

/** The archive holds a name we refuse to write anywhere ('..', absolute, NUL, outside the top directory). */
export class UnsafeOutboxEntry extends Error {
  override name = 'UnsafeOutboxEntry';
}

/**
 * Writes the archive's regular files and directories under `destDir` (which should be empty), keeping their
 * paths relative to `topDir` (the archive of `/outbox` has `outbox/` as its top entry). Returns the files
 * sorted by path. On an error destDir may hold part of the files: the caller removes it.
 */
export async function extractOutbox(archive: NodeJS.ReadableStream, destDir: string, caps: OutboxCaps, topDir = 'outbox'): Promise<OutboxFile[]> {
  const writer = new OutboxWriter(path.resolve(destDir), caps, topDir);
  const extract = tar.extract();
  const feeding = feed(archive, extract).then(
    () => null,
    (error: unknown) => error,
  );
  try {
    for await (const entry of extract) await writer.write(entry);
  } catch (error) {
    extract.destroy();
    (archive as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw error;
  }
  const feedError = await feeding;
  if (feedError) throw feedError;
  return writer.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function feed(archive: NodeJS.ReadableStream, extract: Extract): Promise<void> {
  for await (const chunk of archive) {
    if (extract.destroyed) return;
    if (!extract.write(chunk as Buffer)) await drained(extract);
  }
  extract.end(undefined);
}


/** 'outbox/./a//b/' becomes 'a/b'; the top directory itself becomes ''. Throws on names we refuse. */
export function outboxPath(name: string, topDir: string): string {
  const refuse = (why: string) => new UnsafeOutboxEntry(`outbox entry ${JSON.stringify(name.slice(0, 200))} refused: ${why}`);
  if (name.includes('\0')) throw refuse('its name contains a NUL byte');
  // A backslash is a separator to zip readers (and to archiver, which would turn "a\\..\\x" into "a/../x").
  if (name.includes('\\')) throw refuse('names may not contain a backslash');
  if (/[\x01-\x1f\x7f]/.test(name)) throw refuse('names may not contain control characters');
  if (name.startsWith('/')) throw refuse('absolute names are not allowed');
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw refuse("'..' is not allowed in names");
  if (parts[0] !== topDir) throw refuse(`it is not under ${topDir}/`);
  return parts.slice(1).join('/');
}

class OutboxWriter {
  readonly files: OutboxFile[] = [];
  readonly #root: string;
  readonly #caps: OutboxCaps;
  readonly #topDir: string;
  #totalBytes = 0;
  #directories = 0;

  constructor(root: string, caps: OutboxCaps, topDir: string) {
    this.#root = root;
    this.#caps = caps;
    this.#topDir = topDir;
  }

  async write(entry: Entry): Promise<void> {
    const { header } = entry;
    const rel = outboxPath(header.name, this.#topDir);
    if (rel !== '' && (header.type === 'file' || header.type === 'contiguous-file')) return this.#file(rel, header.size ?? 0, entry);
    if (rel !== '' && header.type === 'directory') {
      // Directories count against the same cap as files: each is an entry on the host's disk.
      if (++this.#directories + this.files.length > this.#caps.maxFiles) throw new OutboxTooLarge(`the outbox holds more than ${this.#caps.maxFiles} files and directories`);
      await mkdir(path.join(this.#root, rel), { recursive: true, mode: 0o755 });
    }
    // Everything else (the top directory, symlinks, hardlinks, devices, FIFOs) is skipped.
    entry.resume();
  }

  async #file(rel: string, declaredSize: number, entry: Entry): Promise<void> {
    if (this.files.length + this.#directories + 1 > this.#caps.maxFiles) throw new OutboxTooLarge(`the outbox holds more than ${this.#caps.maxFiles} files and directories`);
    this.#checkSize(rel, declaredSize);
    const target = path.join(this.#root, rel);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    const hash = createHash('sha256');
    let size = 0;
    // 'wx': never through an existing name (a link, or a file written twice).
    const handle = await open(target, 'wx', 0o644);
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        size += chunk.length;
        this.#checkSize(rel, size);
        hash.update(chunk);
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    this.#totalBytes += size;
    this.files.push({ path: rel, size, sha256: hash.digest('hex') });
  }

  /** `size` bytes of the file `rel` (declared, or read so far) on top of the files already written. */
  #checkSize(rel: string, size: number): void {
    const { maxFileBytes, maxTotalBytes } = this.#caps;
    if (size > maxFileBytes) throw new OutboxTooLarge(`the outbox file ${JSON.stringify(rel)} is over the cap of ${maxFileBytes} bytes per file`);
    if (this.#totalBytes + size > maxTotalBytes) throw new OutboxTooLarge(`the outbox is over the cap of ${maxTotalBytes} bytes in total`);
  }
}
