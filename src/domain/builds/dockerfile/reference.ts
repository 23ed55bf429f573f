// Image references as the engine normalises them (distribution's reference grammar): `busybox`,
// `library/busybox:latest` and `docker.io/library/busybox` are one image. The service compares
// normalised references only to decide what a name means; the engine never sees the user's text.

export interface ImageReference {
  /** `docker.io` for Docker Hub (also when written `index.docker.io` or left out). */
  domain: string;
  /** The repository path, `library/` added to Docker Hub's one-word names. */
  path: string;
  tag: string;
  digest: string | null;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
export const DOCKER_HUB = 'docker.io';

/** The normalised reference, or null when the text is not a valid image reference. */
export function parseReference(text: string): ImageReference | null {
  if (text.length === 0 || text.length > 512) return null;
  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return null;
  }
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return null;
  }
  const { domain, path } = splitDomain(rest);
  if (!DOMAIN.test(domain) || path.split('/').some((part) => !PATH_COMPONENT.test(part))) return null;
  return { domain, path, tag, digest };
}

/** Docker's splitDockerDomain: a first component with a dot or a colon, or `localhost`, is a registry. */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let domain = DOCKER_HUB;
  let path = name;
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  return { domain, path };
}

/** `docker.io/library/busybox:latest`: one spelling per image, to compare and to key maps by. */
export function canonical(reference: ImageReference): string {
  return `${reference.domain}/${reference.path}:${reference.tag}${reference.digest ? `@${reference.digest}` : ''}`;
}

/**
 * Whether a name pushed to `domain/path` would be stored by the engine under a local short name
 * (Docker Hub's names are kept without their registry: `docker.io/x/y` is `x/y` on the engine).
 */
export function isDockerHub(domain: string): boolean {
  const host = domain.toLowerCase().replace(/:\d+$/, '');
  return host === DOCKER_HUB || host === 'index.docker.io' || host.endsWith('.docker.io') || host === 'docker.com' || host.endsWith('.docker.com');
}
