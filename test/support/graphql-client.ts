// A small GraphQL-over-HTTP client for tests: typed documents in, data and errors out, with a
// cookie jar (so login sets the session cookie later calls send) and an optional bearer token.
import { print, type GraphQLFormattedError } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';

export interface GraphqlResult<TData> {
  data: TData | null | undefined;
  errors: GraphQLFormattedError[] | undefined;
  response: Response;
}

export class GraphqlClient {
  url: string;
  /** Cookies the server set, sent back on each request (name → value). */
  readonly cookies = new Map<string, string>();
  bearer: string | undefined;
  headers: Record<string, string> = {};

  constructor(url: string) {
    this.url = url;
  }

  get cookieHeader(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async request<TData, TVariables>(
    document: TypedDocumentNode<TData, TVariables>,
    ...[variables]: TVariables extends Record<string, never> ? [] | [TVariables] : [TVariables]
  ): Promise<GraphqlResult<TData>> {
    return this.raw<TData>({ query: print(document), variables });
  }

  /** Posts any body (for queries that are not in test/documents, such as limit checks). */
  async raw<TData = unknown>(body: unknown, extraHeaders: Record<string, string> = {}): Promise<GraphqlResult<TData>> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...this.headers, ...extraHeaders };
    const cookie = this.cookieHeader;
    if (cookie) headers.cookie = cookie;
    if (this.bearer) headers.authorization = `Bearer ${this.bearer}`;
    const response = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(body) });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair] = setCookie.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /max-age=0/i.test(setCookie)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const json = (await response.json()) as { data?: TData | null; errors?: GraphQLFormattedError[] };
    return { data: json.data, errors: json.errors, response };
  }
}

/** The `extensions.code` of each error, in order. */
export function errorCodes(result: { errors?: readonly GraphQLFormattedError[] | undefined }): unknown[] {
  return (result.errors ?? []).map((e) => e.extensions?.code);
}
