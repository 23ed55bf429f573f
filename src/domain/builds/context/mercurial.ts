// Fetches one revision of a Mercurial repository over http(s) into an empty directory: a clone without
// a working copy, then an update to the revision, with no user configuration, no extensions, no
// subrepositories and no clone bundles (which could pull from other URLs and protocols). hg resolves
// hosts and follows redirects by itself, so every request it makes goes through an egress proxy of its
// own that checks each destination against the address policy and connects to the checked address.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DomainError } from '../../errors.ts';
import type { AddressPolicy } from './address-policy.ts';
import { hostOf, resolveChecked } from './address-policy.ts';
import type { EgressProxy } from './egress-proxy.ts';
import { startEgressProxy } from './egress-proxy.ts';
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

const HG_OPTIONS = ['--noninteractive', '--config', 'subrepos.allowed=false', '--config', 'ui.clonebundles=false'];

/**
 * Every request through the proxy: hg exempts localhost and 127.0.0.1 unless http_proxy.always is set,
 * and nothing is exempted by http_proxy.no.
 */
function proxyOptions(proxy: EgressProxy): string[] {
  return [`http_proxy.host=${proxy.hostPort}`, 'http_proxy.always=true', 'http_proxy.no='].flatMap((setting) => ['--config', setting]);
}

/**
 * The only configuration file hg reads (HGRCPATH): the proxy credentials, kept off the command line,
 * which other local users can read. The temporary home is private to this process.
 */
async function writeHgrc(home: string, proxy: EgressProxy): Promise<string> {
  const file = path.join(home, 'hgrc');
  await writeFile(file, `[http_proxy]\nuser = ${proxy.user}\npasswd = ${proxy.password}\n`, { mode: 0o600 });
  return file;
}

function hgEnv(home: string, hgrc: string, proxy: EgressProxy): Record<string, string> {
  return {
    ...baseEnv(home),
    HGRCPATH: hgrc,
    HGPLAIN: '1',
    HGUSER: 'dockyard',
    // Set explicitly so that no proxy setting of the service's own environment can apply.
    http_proxy: proxy.url,
    https_proxy: proxy.url,
    no_proxy: '',
  };
}

/** A failure of hg after the proxy refused a destination during that step, told as such (hg only saw a 403). */
function refusal(err: unknown, step: string, refusedBefore: number, proxy: EgressProxy, url: URL): unknown {
  const host = proxy.refused[refusedBefore];
  if (host === undefined || !(err instanceof DomainError)) return err;
  const why = host === hostOf(url) ? `${host} resolved to an address that is not allowed` : `the repository redirected to ${host}, which is not allowed`;
  return new DomainError('SOURCE_FETCH_FAILED', `${step} failed: ${why}.`);
}

/** Returns the full node id of the revision checked out. */
export async function fetchMercurial(opts: MercurialFetch): Promise<{ commit: string }> {
  const url = checkRepositoryUrl(opts.url, 'mercurial');
  const revision = checkRef(opts.revision, 'revision');
  const deadline = Date.now() + opts.timeoutMs;
  // Checked before hg runs, so that a refused host fails as URL_NOT_ALLOWED without any hg request;
  // the proxy checks it again, with every later destination.
  await resolveChecked(url, opts.policy);
  const dir = path.resolve(opts.dir); // hg runs in a temporary directory
  return withTempHome(async (home) => {
    const proxy = await startEgressProxy(opts.policy);
    try {
      const env = hgEnv(home, await writeHgrc(home, proxy), proxy);
      const hg = async (step: string, args: string[]) => {
        const refusedBefore = proxy.refused.length;
        try {
          return await runTool('hg', [...HG_OPTIONS, ...proxyOptions(proxy), ...args], { step, cwd: home, env, deadline, signal: opts.signal, url });
        } catch (err) {
          throw refusal(err, step, refusedBefore, proxy, url);
        }
      };
      await hg('hg clone', ['clone', '--noupdate', '--', url.href, dir]);
      await hg('hg update', ['--repository', dir, 'update', '--clean', `--rev=${revision}`]);
      const commit = (await hg('hg log', ['--repository', dir, 'log', '--rev', '.', '--template', '{node}'])).trim();
      return { commit };
    } finally {
      await proxy.close();
    }
  });
}
