// What happens when things go away: Redis during operation, and WebSocket peers during shutdown.
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { AccountEventsDocument, MeDocument } from '../generated/graphql.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { connectWs, execute, subscribe } from '../support/ws-client.ts';
import { freePort, waitForPort } from '../support/ports.ts';

describe('a Redis outage', () => {
  it('does not take the service down: requests are still answered, events are not delivered', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitForPort(port);
    const server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const user = await loggedInUser(server.graphqlUrl);

    redis.kill('SIGKILL');
    await new Promise((resolve) => redis.once('exit', resolve));
    // Logging in publishes an event; with Redis gone that fails, and must not crash the process.
    const again = await loggedInUser(server.graphqlUrl);
    expect((await again.client.request(MeDocument)).data!.me.login).toBe(again.login);
    expect((await user.client.request(MeDocument)).errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const ready = await (await fetch(`${server.url}/readyz`)).json();
    expect(ready.checks.redis.ok).toBe(false);
    expect(ready.checks.database.ok).toBe(true);
  });
});

describe('shutdown', () => {
  it('closes WebSockets with 1001 and does not wait past the grace period for a peer that never answers', async () => {
    const server = await startTestServer({ SHUTDOWN_GRACE_MS: '500' });
    const user = await loggedInUser(server.graphqlUrl);
    const polite = connectWs(server.wsUrl, { cookie: user.client.cookieHeader });
    subscribe(polite.client, AccountEventsDocument); // keeps the (lazy) socket open
    expect((await execute(polite.client, MeDocument)).errors).toBeUndefined();

    // A peer that opens a socket and then stops reading: it will never answer the close frame.
    const stubborn = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => stubborn.once('open', resolve));
    (stubborn as unknown as { _socket: { pause(): void } })._socket.pause();

    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await polite.closed).code).toBe(1001);
  });
});
