// Error masking: what a client sees when a resolver fails. Services are replaced by functions that
// throw, to reach the failure paths that the real services cannot be made to take on demand.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { createGraphqlHandler } from '../../src/graphql/yoga.ts';
import { DomainError } from '../../src/domain/errors.ts';
import type { Services } from '../../src/http/context.ts';

function yogaWith(register: () => Promise<never>) {
  const services = { users: { register } } as unknown as Services;
  const config = parseConfig({ NODE_ENV: 'development' });
  return createGraphqlHandler(config, services, { allowedOrigins: [], trustProxy: false, publicUrl: config.publicUrl });
}

async function post(yoga: ReturnType<typeof yogaWith>) {
  const server = createServer(yoga.requestListener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const query = 'mutation { register(login: "a", password: "b", email: "c") { confirmationToken } }';
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return response.json() as Promise<{ errors: { message: string; extensions: Record<string, unknown> }[] }>;
}

describe('masked errors', () => {
  it('hides an unexpected error, its message and stack, even in development', async () => {
    const body = await post(yogaWith(async () => {
      throw new Error('connection to db.internal:5432 refused');
    }));
    expect(body.errors).toEqual([expect.objectContaining({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } })]);
    expect(JSON.stringify(body)).not.toMatch(/db\.internal|stack|at /);
  });

  it('passes a domain error through with its code and field', async () => {
    const body = await post(yogaWith(async () => {
      throw new DomainError('WEAK_PASSWORD', 'The password must not be empty.', 'password');
    }));
    expect(body.errors).toEqual([
      expect.objectContaining({ message: 'The password must not be empty.', extensions: { code: 'WEAK_PASSWORD', field: 'password' } }),
    ]);
  });
});
