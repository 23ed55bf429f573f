// Who a request acts for: below the auth service and its cache, which both use these types.
import type { User } from '../domain/users/user.entity.ts';

/** A credential as a request presents it: a session cookie's or an API token's `<id>.<secret>`. */
export type Credential = { kind: 'session'; token: string } | { kind: 'apiToken'; token: string };

/** The user a request acts for, and the credential that proved it. */
export interface Viewer {
  user: User;
  credential: { kind: 'session' | 'apiToken'; id: string; expiresAt: Date | null };
}
