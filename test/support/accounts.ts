// Account set-up shared by tests: a registered, confirmed and logged-in user.
import { expect } from 'vitest';
import { ConfirmAccountDocument, LoginDocument, RegisterDocument } from '../generated/graphql.ts';
import { GraphqlClient } from './graphql-client.ts';
import { uniqueLogin } from './server.ts';

export const PASSWORD = 'correct horse battery';

export interface TestUser {
  login: string;
  password: string;
  userId: string;
  /** Logged in: carries the session cookie. */
  client: GraphqlClient;
}

export async function registerUser(graphqlUrl: string, prefix = 'u'): Promise<{ login: string; email: string; token: string; userId: string }> {
  const login = uniqueLogin(prefix);
  const email = `${login}@example.test`;
  const result = await new GraphqlClient(graphqlUrl).request(RegisterDocument, { login, password: PASSWORD, email });
  expect(result.errors).toBeUndefined();
  return { login, email, token: result.data!.register.confirmationToken, userId: result.data!.register.user.id };
}

export async function loggedInUser(graphqlUrl: string, prefix = 'u'): Promise<TestUser> {
  const { login, token, userId } = await registerUser(graphqlUrl, prefix);
  const client = new GraphqlClient(graphqlUrl);
  const confirmed = await client.request(ConfirmAccountDocument, { login, token });
  expect(confirmed.errors).toBeUndefined();
  const loggedIn = await client.request(LoginDocument, { login, password: PASSWORD });
  expect(loggedIn.errors).toBeUndefined();
  return { login, password: PASSWORD, userId, client };
}
