// GraphQL multipart requests (https://github.com/jaydenseric/graphql-multipart-request-spec) for tests.
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { GraphqlClient, GraphqlResult } from './graphql-client.ts';

export interface FilePart {
  /** Where the file goes in the variables, e.g. `input.files.0`. */
  path: string;
  name: string;
  content: Uint8Array<ArrayBuffer> | string;
}

export async function multipartRequest<TData, TVariables>(
  client: GraphqlClient,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
  files: FilePart[],
): Promise<GraphqlResult<TData>> {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: print(document), variables }));
  form.set('map', JSON.stringify(Object.fromEntries(files.map((file, i) => [String(i), [`variables.${file.path}`]]))));
  files.forEach((file, i) => form.set(String(i), new Blob([file.content]), file.name));
  const headers: Record<string, string> = { 'x-graphql-yoga-csrf': '1' };
  if (client.cookieHeader) headers.cookie = client.cookieHeader;
  if (client.bearer) headers.authorization = `Bearer ${client.bearer}`;
  const response = await fetch(client.url, { method: 'POST', headers, body: form });
  const json = (await response.json()) as { data?: TData | null; errors?: GraphqlResult<TData>['errors'] };
  return { data: json.data, errors: json.errors, response };
}
