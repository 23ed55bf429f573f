// Fetches one commit of a git repository over http(s) into an empty directory: a shallow fetch of the
// given branch, tag or full commit id, checked out detached, with every git feature that could reach
// past the URL (other protocols, hooks, redirects, submodules, credential helpers) switched off, and
// the connection pinned to the address the policy checked.
import { isIP } from 'node:net';
import type { AddressPolicy, CheckedAddress } from './address-policy.ts';
import { hostOf, resolveChecked } from './address-policy.ts';
import { checkRef, checkRepositoryUrl } from './repository.ts';
import { baseEnv, runTool, withTempHome } from './run-tool.ts';

export interface GitFetch {
  url: string;
  /** Branch, tag, full commit id, or HEAD. */
  ref: string;
  /** Empty directory that receives the work tree (and its .git). */
  dir: string;
  policy: AddressPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
}

const GIT_CONFIG = [
  'protocol.allow=never',
  'protocol.http.allow=always',
  'protocol.https.allow=always',
  'core.hooksPath=/dev/null',
  'http.followRedirects=false',
  'credential.helper=',
  'submodule.recurse=false',
  'transfer.fsckObjects=true',
  'init.defaultBranch=main',
  'advice.detachedHead=false',
].flatMap((setting) => ['-c', setting]);

function gitEnv(home: string): Record<string, string> {
  return {
    ...baseEnv(home),
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_PROTOCOL_FROM_USER: '0',
    GIT_ALLOW_PROTOCOL: 'http:https',
  };
}

/** `-c http.curloptResolve=host:port:address` for a host name (an IP literal needs no pinning). */
function pinAddress(url: URL, checked: CheckedAddress): string[] {
  if (isIP(hostOf(url)) !== 0) return [];
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const address = checked.family === 6 ? `[${checked.address}]` : checked.address;
  return ['-c', `http.curloptResolve=${hostOf(url)}:${port}:${address}`];
}

/** Returns the full id of the commit checked out. */
export async function fetchGit(opts: GitFetch): Promise<{ commit: string }> {
  const url = checkRepositoryUrl(opts.url, 'git');
  const ref = checkRef(opts.ref);
  const deadline = Date.now() + opts.timeoutMs;
  // Checked before git runs. git would resolve the host again itself; http.curloptResolve hands libcurl
  // the checked address instead, so a DNS answer that changes in between (rebinding) is not used.
  const pin = pinAddress(url, await resolveChecked(url, opts.policy));
  return withTempHome(async (home) => {
    const git = (step: string, args: string[]) =>
      runTool('git', [...GIT_CONFIG, ...pin, ...args], { step, cwd: opts.dir, env: gitEnv(home), deadline, signal: opts.signal, url });
    await git('git init', ['init', '-q']);
    await git('git fetch', ['fetch', '-q', '--depth', '1', '--no-tags', '--no-recurse-submodules', '--', url.href, ref]);
    await git('git checkout', ['checkout', '-q', '--detach', 'FETCH_HEAD']);
    const commit = (await git('git rev-parse', ['rev-parse', 'HEAD'])).trim();
    return { commit };
  });
}
