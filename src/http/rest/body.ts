// Request bodies of the REST routes: JSON, form-encoded, or multipart (busboy). Multipart files are
// streamed to a spool directory as they arrive, never held in memory: old clients send files before
// or after the fields that say what they are for (curl -F keeps the command line's order), and a
// service must know every field, and how many files there are, before it receives the first one.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { IncomingFile } from '../../domain/uploads.ts';
import { checkInput, checkString } from '../input-guard.ts';

/** A file of a multipart body, on disk until the request is answered. */
export interface SpooledFile {
  /** The form field it came in. */
  field: string;
  /** The client's file name, without directories (busboy strips them). */
  filename: string;
  path: string;
  size: number;
}

export type Part = { kind: 'field'; name: string; value: string } | ({ kind: 'file' } & SpooledFile);

export interface RequestBody {
  /** Every part, in the order it arrived (for JSON and form bodies: their fields). */
  parts: Part[];
  /** The first value of a field, or undefined. */
  field(name: string): string | undefined;
  files(field?: string): SpooledFile[];
  /** Removes the spooled files. */
  dispose(): Promise<void>;
}

/** A body the router cannot take: answered with `status` in the surface's own error shape. */
export class BodyError extends Error {
  override name = 'BodyError';
  readonly status: 400 | 413;
  constructor(status: 400 | 413, message: string) {
    super(message);
    this.status = status;
  }
}

export interface BodyLimits {
  /** JSON and form bodies, and each multipart field. */
  maxFieldBytes: number;
  /** Each multipart file (the services check their own caps again as they copy it). */
  maxFileBytes: number;
  maxFiles: number;
  /** Where spool directories are made. */
  spoolDir: string;
  /** Parse a non-multipart body as JSON whatever its content type (boatyard's relaxed content type). */
  alwaysJson?: boolean;
}

const MAX_FIELDS = 200;

/**
 * Reads the body. Every string in it (field names and values, nested JSON, file names) has passed the
 * shared input check (input-guard.ts): a NUL, a lone surrogate or an over-long value is a DomainError
 * INVALID_INPUT naming the field, answered 400 in each surface's shape.
 */
export async function readBody(req: IncomingMessage, limits: BodyLimits): Promise<RequestBody> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/')) return readMultipart(req, limits);
  const text = await readText(req, limits.maxFieldBytes);
  const json = limits.alwaysJson || type.startsWith('application/json') || type.endsWith('+json');
  const form = type.startsWith('application/x-www-form-urlencoded') || type === '';
  const pairs: [string, string][] = text.trim() === '' ? [] : json ? jsonFields(text) : form ? [...new URLSearchParams(text)] : [];
  const parts = pairs.map(([name, value]): Part => ({ kind: 'field', name, value }));
  checkParts(parts);
  return bodyOf(parts);
}

function checkParts(parts: Part[]): void {
  for (const part of parts) {
    if (part.kind === 'field') checkInput({ [part.name]: part.value }, []);
    else {
      checkInput({ [part.field]: null }, []);
      checkString(part.filename, [part.field, 'filename']);
    }
  }
}

/** What a service takes for a spooled file: it is read from disk when the service receives it. */
export function incomingFile(file: SpooledFile): IncomingFile {
  return { receive: async () => ({ name: file.filename, open: () => createReadStream(file.path) }) };
}

function bodyOf(parts: Part[], spool?: string): RequestBody {
  const files = parts.filter((part): part is Extract<Part, { kind: 'file' }> => part.kind === 'file');
  const fields = parts.filter((part): part is Extract<Part, { kind: 'field' }> => part.kind === 'field');
  return {
    parts,
    field: (name) => fields.find((part) => part.name === name)?.value,
    files: (field) => (field === undefined ? files : files.filter((file) => file.field === field)),
    dispose: async () => {
      if (spool) await rm(spool, { recursive: true, force: true });
    },
  };
}

/** JSON object members as strings, the way Kabuto's reqparse (`type=str`) and boatyard's string fields read them. */
function jsonFields(text: string): [string, string][] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BodyError(400, `The body is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BodyError(400, 'The JSON body must be an object.');
  // Nested values too: they become JSON text below, which would hide a lone surrogate behind an escape.
  checkInput(value, []);
  return Object.entries(value)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
}

async function readText(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyError(413, `The body is larger than ${maxBytes} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readMultipart(req: IncomingMessage, limits: BodyLimits): Promise<RequestBody> {
  const parts: Part[] = [];
  const writes: Promise<void>[] = [];
  let spool: string | undefined;
  let spooling: Promise<string> | undefined;
  let problem: BodyError | undefined;
  const spoolDir = () => (spooling ??= mkdtemp(path.join(limits.spoolDir, 'dockyard-upload-')).then((dir) => (spool = dir)));

  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: { fieldSize: limits.maxFieldBytes, fields: MAX_FIELDS, files: limits.maxFiles, fileSize: limits.maxFileBytes, parts: MAX_FIELDS + limits.maxFiles },
    });
  } catch (error) {
    throw new BodyError(400, `The multipart body cannot be read: ${(error as Error).message}`);
  }
  const done = new Promise<void>((resolve, reject) => {
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) problem ??= new BodyError(413, `The field "${name}" is larger than ${limits.maxFieldBytes} bytes.`);
      parts.push({ kind: 'field', name, value });
    });
    parser.on('file', (field, stream, info) => {
      // Files arrive one at a time: busboy reads the next part once this one has been written out.
      const file = { kind: 'file' as const, field, filename: info.filename ?? '', path: '', size: 0 };
      const index = parts.push(file);
      const write = (async () => {
        file.path = path.join(await spoolDir(), String(index));
        const out = createWriteStream(file.path);
        await pipeline(stream, out);
        file.size = out.bytesWritten;
        if (stream.truncated) problem ??= new BodyError(413, `"${file.filename.slice(0, 100)}" is larger than ${limits.maxFileBytes} bytes.`);
      })();
      // A file that cannot be written stops the parser, which would otherwise wait for it forever.
      writes.push(write.catch((error: unknown) => void parser.destroy(error as Error)));
    });
    parser.on('filesLimit', () => (problem ??= new BodyError(413, `At most ${limits.maxFiles} files per request.`)));
    parser.on('fieldsLimit', () => (problem ??= new BodyError(413, `At most ${MAX_FIELDS} fields per request.`)));
    parser.on('partsLimit', () => (problem ??= new BodyError(413, 'Too many parts in the multipart body.')));
    parser.on('close', resolve);
    parser.on('error', (error: Error) => reject(new BodyError(400, `The multipart body cannot be read: ${error.message}`)));
    req.on('error', reject);
  });
  try {
    req.pipe(parser);
    await done;
    await Promise.all(writes);
    if (problem) throw problem;
    checkParts(parts);
  } catch (error) {
    req.unpipe(parser);
    await Promise.allSettled(writes);
    if (spool) await rm(spool, { recursive: true, force: true });
    throw error;
  }
  return bodyOf(parts, spool);
}
