// busboy 1.x ships no types (and @types/busboy is not installed): the part the REST router uses.
declare module 'busboy' {
  import type { IncomingHttpHeaders } from 'node:http';
  import type { Readable, Writable } from 'node:stream';

  export interface BusboyLimits {
    fieldNameSize?: number;
    fieldSize?: number;
    fields?: number;
    fileSize?: number;
    files?: number;
    parts?: number;
    headerPairs?: number;
  }

  export interface BusboyConfig {
    headers: IncomingHttpHeaders;
    limits?: BusboyLimits;
    defParamCharset?: string;
    preservePath?: boolean;
  }

  export interface FieldInfo {
    nameTruncated: boolean;
    valueTruncated: boolean;
    encoding: string;
    mimeType: string;
  }

  export interface FileInfo {
    filename: string | undefined;
    encoding: string;
    mimeType: string;
  }

  export interface FileStream extends Readable {
    /** Set once the file went over `limits.fileSize` (the rest of it is dropped). */
    truncated: boolean;
  }

  export interface Busboy extends Writable {
    on(event: 'field', listener: (name: string, value: string, info: FieldInfo) => void): this;
    on(event: 'file', listener: (name: string, stream: FileStream, info: FileInfo) => void): this;
    on(event: 'partsLimit' | 'filesLimit' | 'fieldsLimit' | 'close', listener: () => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
  }

  export default function busboy(config: BusboyConfig): Busboy;
}
