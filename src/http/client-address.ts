// The address a request comes from, for per-client limits: the socket's peer, or, behind a trusted
// reverse proxy (TRUST_PROXY), the last address of X-Forwarded-For: the one that proxy saw. Earlier
// entries are whatever the client wrote and are never used.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export function clientAddress(req: IncomingMessage, trustProxy: boolean): string | null {
  if (trustProxy) {
    // Node joins repeated X-Forwarded-For headers with ", ": the last entry is the nearest proxy's.
    const forwarded = req.headers['x-forwarded-for'];
    const last = typeof forwarded === 'string' ? normaliseAddress(forwarded.split(',').at(-1) ?? '') : null;
    if (last) return last;
  }
  return normaliseAddress(req.socket.remoteAddress ?? '');
}

/**
 * An IP address in one spelling (IPv4-mapped IPv6 as IPv4, IPv6 lower-case without zone), or null when
 * it is none. Accepts what proxies write: `1.2.3.4:5678` and `[2001:db8::1]:443`.
 */
export function normaliseAddress(raw: string): string | null {
  let address = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'));
  address = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/.exec(address);
  if (mapped) address = mapped[1]!;
  return isIP(address) === 0 ? null : address;
}
