// Where the tests find their real services: a database made for this run (see global-setup.ts) on the
// server TEST_DATABASE_URL names, and the Redis TEST_REDIS_URL names.
import { inject } from 'vitest';

export const TEST_DATABASE_URL = inject('databaseUrl');
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
