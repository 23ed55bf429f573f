// Fetches one revision of a Mercurial repository over http(s) into an empty directory: a clone without
// a working copy, then an update to the revision, with no user configuration, no extensions and no
// subrepositories (which could pull from other URLs and protocols).
import path from 'node:path';
import type { AddressPolicy } from './address-policy.ts';
import { resolveChecked } from './address-policy.ts';
import { checkRef, checkRepositoryUrl } from './repository.ts';
import { baseEnv, runTool, withTempHome } from './run-tool.ts';

export interface MercurialFetch {
  url: string;
  /** Branch, tag, bookmark or node id. */
  revision: string;
  /** Empty directory that receives the working copy (and its .hg). */
  dir: string;
  policy: AddressPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
}

const HG_OPTIONS = ['--noninteractive', '--config', 'subrepos.allowed=false'];

function hgEnv(home: string): Record<string, string> {
  return { ...baseEnv(home), HGRCPATH: '/dev/null', HGPLAIN: '1', HGUSER: 'dockyard' };
}

/** Returns the full node id of the revision checked out. */
export async function fetchMercurial(opts: MercurialFetch): Promise<{ commit: string }> {
  const url = checkRepositoryUrl(opts.url, 'mercurial');
  const revision = checkRef(opts.revision, 'revision');
  const deadline = Date.now() + opts.timeoutMs;
  // A check before hg runs: hg resolves the host again itself (and may follow redirects), so the build
  // network's egress filter is the backstop here (see the hardening notes).
  await resolveChecked(url, opts.policy);
  const dir = path.resolve(opts.dir); // hg runs in a temporary directory
  return withTempHome(async (home) => {
    const hg = (step: string, args: string[]) =>
      runTool('hg', [...HG_OPTIONS, ...args], { step, cwd: home, env: hgEnv(home), deadline, signal: opts.signal, url });
    await hg('hg clone', ['clone', '--noupdate', '--', url.href, dir]);
    await hg('hg update', ['--repository', dir, 'update', '--clean', `--rev=${revision}`]);
    const commit = (await hg('hg log', ['--repository', dir, 'log', '--rev', '.', '--template', '{node}'])).trim();
    return { commit };
  });
}
