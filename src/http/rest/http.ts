// Small plumbing shared by the REST surfaces: a route table matched on method and path, and JSON replies.
import type { ServerResponse } from 'node:http';
import { checkInput, checkString } from '../input-guard.ts';

export interface Route<H> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Matched against the path after the surface's prefix; capture groups become the handler's params. */
  pattern: RegExp;
  handler: H;
}

export type Match<H> = { route: Route<H>; params: string[] } | 'method-not-allowed' | null;

/** The route for this method and path; 'method-not-allowed' when only other methods have the path. */
export function matchRoute<H>(routes: Route<H>[], method: string, path: string): Match<H> {
  let pathKnown = false;
  for (const route of routes) {
    const found = route.pattern.exec(path);
    if (!found) continue;
    if (route.method === method) return { route, params: found.slice(1).map((p) => decode(p ?? '')) };
    pathKnown = true;
  }
  return pathKnown ? 'method-not-allowed' : null;
}

/** A path pattern: `:id` is an integer id, `:name` any one segment; a trailing slash is allowed. */
export function pattern(spec: string): RegExp {
  const source = spec
    .split('/')
    .map((segment) => (segment === ':id' ? '(\\d{1,10})' : segment === ':name' ? '([^/]+)' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/** The path's captures and the query string pass the shared input check, like body fields: INVALID_INPUT naming `path[i]` or the parameter. */
export function checkUrlInput(params: readonly string[], query: URLSearchParams): void {
  params.forEach((param, index) => checkString(param, ['path', index]));
  for (const [name, value] of query) checkInput({ [name]: value }, []);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
