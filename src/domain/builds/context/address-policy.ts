// Which network addresses the service may fetch build sources from: public unicast only, unless the
// admin allows private ranges or names hosts, addresses or CIDRs explicitly. A host is resolved once
// here and the address we checked is the one the caller connects to.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { DomainError } from '../../errors.ts';

export interface AddressPolicy {
  /** Allow every address, private ones included. */
  allowPrivate: boolean;
  /** Exact host names or IPs, or CIDRs, allowed even when private. */
  allowedHosts: string[];
}

export interface CheckedAddress {
  address: string;
  family: 4 | 6;
}

/** Ranges that are not public unicast. IPv4-mapped IPv6 forms (::ffff:a.b.c.d) match their IPv4 rule. */
const NOT_PUBLIC: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // unspecified, "this network"
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // CGNAT
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 96, 'ipv6'], // unspecified, loopback, IPv4-compatible
  ['64:ff9b::', 96, 'ipv6'], // NAT64
  ['64:ff9b:1::', 48, 'ipv6'],
  ['100::', 64, 'ipv6'], // discard
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['2002::', 16, 'ipv6'], // 6to4 (embeds an IPv4 address)
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
  ['ff00::', 8, 'ipv6'], // multicast
];

const notPublic = new BlockList();
for (const [network, prefix, family] of NOT_PUBLIC) notPublic.addSubnet(network, prefix, family);

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

export function isPublicAddress(address: string): boolean {
  return isIP(address) !== 0 && !notPublic.check(address, familyOf(address));
}

/** The host of a URL as DNS and isIP know it: no brackets around IPv6, no trailing dot. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
}

/** Whether one allowedHosts entry covers this host name or resolved address. */
function entryMatches(entry: string, host: string, address: string): boolean {
  const wanted = entry.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const slash = wanted.indexOf('/');
  const list = new BlockList();
  if (slash > 0) {
    const network = wanted.slice(0, slash);
    const prefix = Number(wanted.slice(slash + 1));
    if (isIP(network) === 0 || !Number.isInteger(prefix)) return false;
    list.addSubnet(network, prefix, familyOf(network));
  } else if (isIP(wanted) !== 0) {
    list.addAddress(wanted, familyOf(wanted));
  } else {
    return wanted.replace(/\.$/, '') === host;
  }
  return list.check(address, familyOf(address));
}

export function isAllowed(host: string, address: string, policy: AddressPolicy): boolean {
  if (policy.allowPrivate || isPublicAddress(address)) return true;
  return policy.allowedHosts.some((entry) => entryMatches(entry, host, address));
}

/**
 * Resolves the URL's host (every address it has) and returns the first one, after checking that all
 * are allowed: a host with one public and one private address is refused (URL_NOT_ALLOWED).
 */
export async function resolveChecked(url: URL, policy: AddressPolicy): Promise<CheckedAddress> {
  const host = hostOf(url);
  const addresses = await resolveHost(host);
  for (const { address } of addresses) {
    if (!isAllowed(host, address, policy)) {
      const shown = address === host ? host : `${host} (${address})`;
      throw new DomainError('URL_NOT_ALLOWED', `${shown} is a private, loopback or reserved address: not allowed as a build source.`);
    }
  }
  const first = addresses[0];
  if (!first) throw new DomainError('SOURCE_FETCH_FAILED', `Cannot resolve the host ${host}.`);
  return first;
}

async function resolveHost(host: string): Promise<CheckedAddress[]> {
  const family = isIP(host);
  if (family !== 0) return [{ address: host, family: family as 4 | 6 }];
  try {
    const found = await lookup(host, { all: true, verbatim: true });
    return found.map(({ address, family: f }) => ({ address, family: f === 6 ? 6 : 4 }));
  } catch {
    throw new DomainError('SOURCE_FETCH_FAILED', `Cannot resolve the host ${host}.`);
  }
}

/** An http(s) URL, or URL_NOT_ALLOWED. */
export function parseHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DomainError('URL_NOT_ALLOWED', 'The URL is not valid.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DomainError('URL_NOT_ALLOWED', `Only http and https URLs are allowed, not ${url.protocol}`);
  }
  return url;
}

/**
 * For checks when a build is requested: the URL is http(s) and its host resolves only to allowed
 * addresses (URL_NOT_ALLOWED, or SOURCE_FETCH_FAILED when it does not resolve). The fetch checks again.
 */
export async function assertUrlAllowed(url: string, policy: AddressPolicy): Promise<void> {
  await resolveChecked(parseHttpUrl(url), policy);
}
