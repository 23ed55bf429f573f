// Size and shape caps for build contexts (uploads, downloaded tarballs, fetched repositories).
// The defaults follow the upload/context caps in the container-hardening notes.

export interface ContextLimits {
  /** Largest archive as received (compressed, when it is gzip). */
  maxArchiveBytes: number;
  /** Largest total of file contents once expanded. */
  maxExpandedBytes: number;
  /** Most entries (files, directories, links). */
  maxEntries: number;
  /** Longest entry path, in bytes. */
  maxPathLength: number;
  /** Deepest entry path, in components. */
  maxDepth: number;
}

export const DEFAULT_CONTEXT_LIMITS: ContextLimits = Object.freeze({
  maxArchiveBytes: 100 * 2 ** 20,
  maxExpandedBytes: 2 ** 30,
  maxEntries: 10_000,
  maxPathLength: 4096,
  maxDepth: 64,
});
