import type { FileUpload } from 'graphql-upload-minimal';
import type { UploadedFile } from '../domain/uploads.ts';

/** Waits for a multipart file's headers (not its content) and hands the service a stream to read it from. */
export async function uploadedFile(upload: Promise<FileUpload>): Promise<UploadedFile> {
  const file = await upload;
  return { name: file.filename, open: () => file.createReadStream() };
}
