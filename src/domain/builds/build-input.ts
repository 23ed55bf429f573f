// Checks of the options a user gives a build, before anything is stored or sent to the engine.
import { DomainError } from '../errors.ts';
import { isDockerHub, parseReference } from './dockerfile/reference.ts';

export const IMAGE_NAME_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const BUILD_ARG_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const TARGET_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** `host`, `host:port`, IPv4 or `[IPv6]`, with an optional port: what a registry address may be. */
const REGISTRY_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
const MAX_TAGS = 10;
const MAX_PAIRS = 50;
const MAX_VALUE_LENGTH = 4096;
/** Labels the service sets on what it builds and runs; users may not set or fake them. */
export const SERVICE_LABEL_PREFIX = 'io.dockyard.';

export function checkImageName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length > 128 || !IMAGE_NAME_PATTERN.test(trimmed)) {
    throw new DomainError('INVALID_INPUT', 'An image name has lower-case letters and digits, with single . _ or - between them (at most 128).', 'imageName');
  }
  return trimmed;
}

/** The form of a registry address: `host`, `host:port`, IPv4 or `[IPv6]`. */
export function checkRegistry(registry: string): string {
  const trimmed = registry.trim().toLowerCase();
  if (!REGISTRY_PATTERN.test(trimmed)) {
    throw new DomainError('INVALID_INPUT', 'A registry is a host name or address with an optional port, such as registry.example.com:5000.', 'registry');
  }
  return trimmed;
}

export function checkTags(tags: string[]): string[] {
  if (tags.length > MAX_TAGS) throw new DomainError('INVALID_INPUT', `At most ${MAX_TAGS} tags.`, 'tags');
  for (const tag of tags) {
    if (!TAG_PATTERN.test(tag)) throw new DomainError('INVALID_INPUT', `"${tag.slice(0, 140)}" is not a valid tag.`, 'tags');
  }
  return [...new Set(tags)];
}

export interface KeyValue {
  key: string;
  value: string;
}

export function checkBuildArgs(pairs: KeyValue[]): Record<string, string> {
  return checkPairs(pairs, 'buildArgs', (key) => BUILD_ARG_PATTERN.test(key));
}

export function checkLabels(pairs: KeyValue[]): Record<string, string> {
  return checkPairs(pairs, 'labels', (key) => LABEL_PATTERN.test(key) && !key.startsWith(SERVICE_LABEL_PREFIX));
}

export function checkTarget(target: string | null | undefined): string | null {
  if (target == null || target === '') return null;
  if (!TARGET_PATTERN.test(target)) throw new DomainError('INVALID_INPUT', `"${target.slice(0, 140)}" is not a valid build stage name.`, 'target');
  return target;
}

export function checkTimeout(seconds: number | null | undefined, maximum: number): number {
  if (seconds == null) return maximum;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > maximum) {
    throw new DomainError('INVALID_INPUT', `timeoutSeconds must be between 1 and ${maximum}.`, 'timeoutSeconds');
  }
  return seconds;
}

const REPOSITORY_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

/** A repository path in a registry (`user/image`): pushing there is what the registry's credentials allow. */
export function checkPushRepository(repository: string | null | undefined): string | null {
  if (repository == null || repository === '') return null;
  if (repository.length > 255 || !REPOSITORY_PATTERN.test(repository)) {
    throw new DomainError('INVALID_INPUT', `"${repository.slice(0, 140)}" is not a valid repository path (lower-case, like user/image).`, 'push');
  }
  return repository;
}

/**
 * A registry the engine keeps names of apart from its local names: a host with a dot or a port, or
 * `localhost`, and not Docker Hub (the engine stores `docker.io/x/y` as the local name `x/y`, so a push
 * there would tag, and could overwrite, a local image). Pushed names are then always `<registry>/…`.
 */
export function checkPushRegistry(registry: string): string {
  const trimmed = checkRegistry(registry);
  if (isDockerHub(trimmed)) {
    throw new DomainError('INVALID_INPUT', 'Pushing to Docker Hub is not supported: its names are the engine\'s local names. Use a registry such as registry.example.com.', 'registry');
  }
  if (parseReference(`${trimmed}/image`)?.domain !== trimmed) {
    throw new DomainError('INVALID_INPUT', `"${trimmed}" would be read as a Docker Hub name: a registry needs a dot or a port (registry.example.com, host:5000) or is localhost.`, 'registry');
  }
  return trimmed;
}

function checkPairs(pairs: KeyValue[], field: string, keyOk: (key: string) => boolean): Record<string, string> {
  if (pairs.length > MAX_PAIRS) throw new DomainError('INVALID_INPUT', `At most ${MAX_PAIRS} ${field}.`, field);
  const result = new Map<string, string>();
  for (const { key, value } of pairs) {
    if (!keyOk(key)) throw new DomainError('INVALID_INPUT', `"${key.slice(0, 140)}" is not an acceptable name in ${field}.`, field);
    if (result.has(key)) throw new DomainError('INVALID_INPUT', `"${key}" appears twice in ${field}.`, field);
    if (value.length > MAX_VALUE_LENGTH || value.includes('\0')) throw new DomainError('INVALID_INPUT', `The value of "${key}" in ${field} is too long or holds a NUL.`, field);
    result.set(key, value);
  }
  return Object.fromEntries(result);
}
