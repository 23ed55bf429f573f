// archiver 8 ships no types (and @types/archiver describes its older API): the part we use.
declare module 'archiver' {
  import type { Transform } from 'node:stream';
  export class ZipArchive extends Transform {
    constructor(options?: { zlib?: { level?: number } });
    file(path: string, data: { name: string }): this;
    finalize(): Promise<void>;
    pointer(): number;
  }
}
