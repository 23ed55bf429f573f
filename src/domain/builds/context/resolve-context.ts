// Finds the build context and the Dockerfile inside a fetched source tree: the user's paths are
// normalised first, then resolved for real, so that a symlinked directory or Dockerfile cannot lead out.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { DomainError } from '../../errors.ts';
import { checkRelativePath, isInside, isMissing, quote } from './paths.ts';

export interface ResolvedContext {
  /** Absolute, resolved directory to pack. */
  contextDir: string;
  /** The Dockerfile relative to contextDir, with forward slashes. */
  dockerfile: string;
}

function refuse(field: string, message: string): DomainError {
  return new DomainError('INVALID_BUILD_CONTEXT', message, field);
}

export async function resolveContext(repoDir: string, contextPath: string, dockerfilePath: string): Promise<ResolvedContext> {
  const contextRel = checkRelativePath(contextPath, 'contextPath');
  const dockerfileRel = checkRelativePath(dockerfilePath, 'dockerfilePath');
  if (dockerfileRel === '.') throw new DomainError('INVALID_SOURCE', 'dockerfilePath must name a file.', 'dockerfilePath');
  const root = await realpath(repoDir);
  const contextDir = await resolveWithin(root, contextRel, 'contextPath', 'the repository');
  if (!(await stat(contextDir)).isDirectory()) throw refuse('contextPath', `contextPath ${quote(contextRel)} is not a directory.`);
  const dockerfile = await resolveWithin(contextDir, dockerfileRel, 'dockerfilePath', 'the build context');
  if (!(await stat(dockerfile)).isFile()) throw refuse('dockerfilePath', `dockerfilePath ${quote(dockerfileRel)} is not a regular file.`);
  return { contextDir, dockerfile: path.relative(contextDir, dockerfile).split(path.sep).join('/') };
}

/** realpath of `rel` under `base`, which must exist and stay inside `base`. */
async function resolveWithin(base: string, rel: string, field: string, what: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await realpath(path.join(base, rel));
  } catch (err) {
    if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw refuse(field, `${field} ${quote(rel)} does not exist in ${what}.`);
    }
    throw err;
  }
  if (!isInside(base, resolved)) throw refuse(field, `${field} ${quote(rel)} leads outside ${what}.`);
  return resolved;
}
