// A build context made from a Dockerfile typed in the request plus a few uploaded files, each placed
// at the top of the context under its plain name.
import { constants } from 'node:fs';
import { chmod, copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DomainError } from '../../errors.ts';
import { quote } from './paths.ts';

export interface InlineFile {
  /** The name the file gets in the context: a plain name, no directories. */
  name: string;
  /** Where the uploaded file is on disk now. */
  path: string;
}

/** Writes `Dockerfile` and the given files into the empty directory `dir`. */
export async function contextFromDockerfile(dir: string, dockerfile: string, files: InlineFile[]): Promise<void> {
  checkFileNames(files.map((f) => f.name));
  await writeFile(path.join(dir, 'Dockerfile'), dockerfile, { flag: 'wx', mode: 0o644 });
  await chmod(path.join(dir, 'Dockerfile'), 0o644);
  for (const file of files) {
    const target = path.join(dir, file.name);
    await copyFile(file.path, target, constants.COPYFILE_EXCL);
    await chmod(target, 0o644);
  }
}

function checkFileNames(names: string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    const why = fileNameProblem(name);
    if (why) throw new DomainError('INVALID_BUILD_CONTEXT', `File name ${quote(name)} is not acceptable: ${why}.`, 'files');
    if (seen.has(name)) throw new DomainError('INVALID_BUILD_CONTEXT', `File name ${quote(name)} is given twice.`, 'files');
    seen.add(name);
  }
}

function fileNameProblem(name: string): string | null {
  if (name === '' || name === '.' || name === '..') return 'it must be a plain file name';
  if (name.includes('\0')) return 'it contains a NUL byte';
  if (name.includes('/') || name.includes('\\')) return 'it may not contain slashes';
  if (name === 'Dockerfile') return 'it would replace the Dockerfile';
  if (Buffer.byteLength(name) > 255) return 'it is too long';
  return null;
}
