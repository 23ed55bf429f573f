// Starts real Dockyard instances in the test process, on PostgreSQL and Redis unless told otherwise.
import { randomUUID } from 'node:crypto';
import { afterAll, expect, onTestFinished } from 'vitest';
import { parseConfig, type Config } from '../../src/config.ts';
import { startDockyard, type Adapters, type Dockyard } from '../../src/main.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './env.ts';

export interface TestServer extends Dockyard {
  config: Config;
  graphqlUrl: string;
  wsUrl: string;
}

/** Starts an instance on a free port and stops it after the file's tests. `env` overrides settings; `adapters` replace the Docker ones. */
export async function startTestServer(env: Record<string, string | undefined> = {}, adapters: Adapters = {}): Promise<TestServer> {
  const config = parseConfig({
    NODE_ENV: 'test',
    PORT: '0',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    SHUTDOWN_GRACE_MS: '2000',
    // Test files share the database: only servers that test builds run them, each under its own worker id.
    BUILD_CONCURRENCY: '0',
    JOB_CONCURRENCY: '0',
    INSTANCE_ID: `test-${randomUUID()}`,
    // Every test logs in from 127.0.0.1, and the per-address count is shared in Redis by all of them:
    // only the login rate limit's own tests (which set it) count to a small limit.
    LOGIN_RATE_LIMIT: '100000',
    ...env,
  });
  const dockyard = await startDockyard(config, adapters);
  // Stopped when the test that started it ends, or after the file's tests when started at the top.
  if (expect.getState().currentTestName) onTestFinished(() => dockyard.close());
  else afterAll(() => dockyard.close());
  return {
    ...dockyard,
    config,
    graphqlUrl: `${dockyard.url}/graphql`,
    wsUrl: `${dockyard.url.replace(/^http/, 'ws')}/graphql`,
  };
}

/** A login that no other test (or earlier run) uses. */
export function uniqueLogin(prefix = 'u'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
