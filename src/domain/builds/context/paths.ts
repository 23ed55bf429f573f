// Path rules shared by the build-context code: relative paths typed by users, entry names read from
// archives, and whether a path stays inside a root once symlinks are followed the way the kernel does.
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { DomainError } from '../../errors.ts';

/** Kernel limit on symlinks followed while resolving one path (Linux MAXSYMLINKS). */
const MAX_SYMLINK_HOPS = 40;

/** Shows a user-supplied string in a message: quoted, escaped and cut short. */
export function quote(value: string): string {
  const shown = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return JSON.stringify(shown);
}

/**
 * Normalises a relative path given by a user ('' and './' become '.', 'a//b/' becomes 'a/b') and refuses
 * absolute paths, '..' that climbs out, NUL bytes, control characters and backslashes (INVALID_SOURCE).
 */
export function checkRelativePath(p: string, field: string): string {
  const refuse = (why: string) =>
    new DomainError('INVALID_SOURCE', `${field} ${quote(p)} is not acceptable: ${why}.`, field);
  if (p.includes('\0')) throw refuse('it contains a NUL byte');
  if (/[\x00-\x1f\x7f]/.test(p)) throw refuse('it contains control characters');
  if (p.includes('\\')) throw refuse('use forward slashes');
  if (p.startsWith('/')) throw refuse('it must be relative');
  if (p.length > 4096) throw refuse('it is too long');
  const normal = path.posix.normalize(p === '' ? '.' : p).replace(/\/+$/, '') || '.';
  if (normal === '..' || normal.startsWith('../')) throw refuse('it leads outside the repository');
  return normal;
}

/** True when `child` is `parent` or below it (both absolute and already resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The target of `file` when it is a symlink; null when it is anything else or does not exist. */
async function symlinkTarget(file: string): Promise<string | null> {
  try {
    const stat = await lstat(file);
    return stat.isSymbolicLink() ? await readlink(file) : null;
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Follows `rel` (relative to `root`) one component at a time like the kernel, reading each symlink on the
 * way, and returns where it lands relative to root ('' for root itself); null as soon as it would leave
 * root (a '..' above it, an absolute symlink target, or a symlink loop). Components that do not exist are
 * taken literally. `root` must itself be a resolved path (realpath).
 */
export async function resolveInside(root: string, rel: string): Promise<string | null> {
  const pending = rel.split('/');
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return null;
      resolved.pop();
      continue;
    }
    const target = await symlinkTarget(path.join(root, ...resolved, part));
    if (target === null) {
      resolved.push(part);
      continue;
    }
    hops += 1;
    if (hops > MAX_SYMLINK_HOPS || target.startsWith('/')) return null;
    pending.unshift(...target.split('/'));
  }
  return resolved.join('/');
}
