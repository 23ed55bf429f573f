// Direct SQL for tests that need to move time (expire a session, a token…) without waiting.
import { afterAll } from 'vitest';
import pg from 'pg';
import { TEST_DATABASE_URL } from './env.ts';

export function testDatabase(): pg.Pool {
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2 });
  afterAll(() => pool.end());
  return pool;
}
