// Build contexts: every build source (inline Dockerfile, uploaded archive, tarball URL, git, Mercurial)
// turned into a checked directory, and that directory packed for the Docker build API.
export { DEFAULT_CONTEXT_LIMITS, type ContextLimits } from './limits.ts';
export { assertUrlAllowed, type AddressPolicy } from './address-policy.ts';
export { contextFromDockerfile, type InlineFile } from './inline.ts';
export { extractTarball } from './extract.ts';
export { downloadTarball, type DownloadOptions } from './download.ts';
export { checkRef, checkRepositoryUrl, redactUrl } from './repository.ts';
export { checkRelativePath } from './paths.ts';
export { fetchGit, type GitFetch } from './git.ts';
export { fetchMercurial, type MercurialFetch } from './mercurial.ts';
export { resolveContext, type ResolvedContext } from './resolve-context.ts';
export { packContext } from './pack.ts';
