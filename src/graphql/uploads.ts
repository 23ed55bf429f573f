import type { FileUpload } from 'graphql-upload-minimal';
import type { IncomingFile } from '../domain/uploads.ts';

/** A multipart file for a service, which receives it (its headers) when it is ready to read it. */
export function incomingFile(upload: Promise<FileUpload>): IncomingFile {
  return {
    receive: async () => {
      const file = await upload;
      return { name: file.filename, open: () => file.createReadStream() };
    },
  };
}
