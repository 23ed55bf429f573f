// Which web origins may use the session cookie: the service's own (same-origin or PUBLIC_URL) and ALLOWED_ORIGINS.
import type { IncomingHttpHeaders } from 'node:http';

export interface OriginPolicy {
  allowedOrigins: string[];
  trustProxy: boolean;
  publicUrl: URL;
}

/** The scheme and host the client used, as far as the request tells (proxies only when trusted). */
export function requestOrigin(headers: IncomingHttpHeaders, encrypted: boolean, policy: OriginPolicy): string | null {
  const forwardedProto = policy.trustProxy ? first(headers['x-forwarded-proto']) : undefined;
  const forwardedHost = policy.trustProxy ? first(headers['x-forwarded-host']) : undefined;
  const host = forwardedHost ?? headers.host;
  if (!host) return null;
  const proto = forwardedProto ?? (encrypted ? 'https' : 'http');
  return `${proto}://${host}`.toLowerCase();
}

/** True when there is no Origin header (not a browser's cross-site request) or the origin is allowed. */
export function originAllowed(headers: IncomingHttpHeaders, encrypted: boolean, policy: OriginPolicy): boolean {
  const origin = first(headers.origin)?.toLowerCase();
  if (origin === undefined) return true;
  return origin === requestOrigin(headers, encrypted, policy) || policy.allowedOrigins.includes(origin);
}

/** Session cookies get the Secure flag when users reach the service over https. */
export function secureCookies(headers: IncomingHttpHeaders, policy: OriginPolicy): boolean {
  if (policy.publicUrl.protocol === 'https:') return true;
  return policy.trustProxy && first(headers['x-forwarded-proto']) === 'https';
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
