// The API baseline: a bare yoga endpoint on node:http (yoga's defaults, no plugins, no database) whose
// `job(id)` returns a constant of the same shape as Dockyard's. Run as its own process, like Dockyard.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({
  schema: createSchema({
    typeDefs: 'type Query { job(id: ID!): Job! } type Job { id: ID! state: String! exitCode: Int }',
    resolvers: { Query: { job: (_root: unknown, { id }: { id: string }) => ({ id, state: 'SUCCEEDED', exitCode: 0 }) } },
  }),
  logging: false,
  landingPage: false,
  graphiql: false,
});

const server = createServer(yoga);
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
