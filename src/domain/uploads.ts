// Files that arrive with a request (GraphQL multipart or REST), streamed to disk with a size cap,
// never held whole in memory.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from './errors.ts';

/** A file from a request, read once as a stream. */
export interface UploadedFile {
  name: string;
  open(): NodeJS.ReadableStream;
}

/**
 * A file still on its way. Files of one request arrive one after another: receive one and read it
 * to its end before receiving the next (waiting for a later one first would wait forever).
 */
export interface IncomingFile {
  receive(): Promise<UploadedFile>;
}

/** Streams the file to `target`; TOO_LARGE past `cap` bytes (the partial file is the caller's to remove). */
export async function saveUpload(file: UploadedFile, target: string, cap: number, field: string): Promise<{ size: number; sha256: string }> {
  let size = 0;
  const hash = createHash('sha256');
  const tooLarge = () => new DomainError('TOO_LARGE', `"${file.name.slice(0, 100)}" is larger than ${cap} bytes.`, field);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > cap) return callback(tooLarge());
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(file.open(), counter, createWriteStream(target));
  } catch (error) {
    if (error instanceof DomainError) throw error;
    // graphql-upload-minimal ends an over-size file with this error.
    if (/exceeds the .* size limit/i.test((error as Error).message)) throw tooLarge();
    throw error;
  }
  return { size, sha256: hash.digest('hex') };
}
