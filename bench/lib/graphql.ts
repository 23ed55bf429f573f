// GraphQL over HTTP for the bench: a POST with JSON, the API token as a bearer, errors thrown.

export class Gql {
  readonly url: string;
  bearer: string | undefined;

  constructor(url: string, bearer?: string) {
    this.url = url;
    this.bearer = bearer;
  }

  async request<T = Record<string, any>>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.bearer) headers.authorization = `Bearer ${this.bearer}`;
    const response = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    return graphqlData<T>(await response.text(), query);
  }
}

/** The `data` of a GraphQL response body; throws with the first error's message and code. */
export function graphqlData<T>(body: string, query: string): T {
  let json: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    throw new Error(`not a GraphQL response: ${body.slice(0, 300)}`);
  }
  if (json.errors?.length) {
    const [first] = json.errors;
    throw new Error(`GraphQL error ${first!.extensions?.code ?? ''}: ${first!.message} (in ${query.replace(/\s+/g, ' ').slice(0, 80)}…)`);
  }
  return json.data as T;
}
