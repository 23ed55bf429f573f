// Events cross processes through Redis: two instances on one database and one Redis, a subscriber on
// one receives what the other publishes.
import { describe, expect, it } from 'vitest';
import { AccountEventsDocument, CreateApiTokenDocument, LoginDocument } from '../generated/graphql.ts';
import { GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser, PASSWORD } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { connectWs, subscribe } from '../support/ws-client.ts';
import { inProcessEvents } from '../../src/events/pubsub.ts';

describe('events between instances', () => {
  it('delivers an event published by instance B to a subscriber on instance A', async () => {
    const a = await startTestServer();
    const b = await startTestServer();
    expect(a.url).not.toBe(b.url);
    const user = await loggedInUser(a.graphqlUrl);
    const ws = connectWs(a.wsUrl, { cookie: user.client.cookieHeader }).client;
    const events = subscribe(ws, AccountEventsDocument);

    // The same account, logged in on instance B.
    const onB = new GraphqlClient(b.graphqlUrl);
    await onB.request(LoginDocument, { login: user.login, password: PASSWORD });
    // Redis keeps nothing for a subscriber that is not listening yet: repeat until the first event arrives.
    let first;
    for (let attempt = 0; !first && attempt < 20; attempt++) {
      await onB.request(CreateApiTokenDocument, { name: `warm-up ${attempt}` });
      first = await events.next(250).catch(() => undefined);
    }
    expect(first).toBeDefined();

    const made = await onB.request(CreateApiTokenDocument, { name: 'made on B' });
    const madeId = made.data!.createApiToken.apiToken.id;
    // Later warm-up events may still be on their way; the one for this token must follow them.
    let event = await events.next();
    while (event.data!.accountEvents.subjectId !== madeId) event = await events.next();
    expect(event.data!.accountEvents).toEqual({
      kind: 'API_TOKEN_CREATED',
      subjectId: madeId,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    await events.stop();
    await ws.dispose();
  });
});

describe('in-process events (no REDIS_URL)', () => {
  it('delivers to subscribers of the same topic and id only', async () => {
    const { bus } = inProcessEvents();
    const mine = bus.subscribe('account', '1')[Symbol.asyncIterator]();
    const theirs = bus.subscribe('account', '2')[Symbol.asyncIterator]();
    const pending = mine.next();
    const theirsPending = theirs.next();
    bus.publish('account', '1', { kind: 'SESSION_STARTED', userId: '1', subjectId: 's1', at: '2026-01-01T00:00:00.000Z' });
    expect((await pending).value).toMatchObject({ kind: 'SESSION_STARTED', subjectId: 's1' });
    const raced = await Promise.race([theirsPending.then(() => 'delivered'), new Promise((r) => setTimeout(() => r('nothing'), 100))]);
    expect(raced).toBe('nothing');
    await mine.return?.();
    await theirs.return?.();
  });
});
