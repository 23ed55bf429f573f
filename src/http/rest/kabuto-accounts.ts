// Kabuto's accounts: register (the answer holds the confirmation token), confirm, log in (sets
// Dockyard's session cookie, which later calls send), log out, and `GET /` to check the session.
// The users and auth services do the work; the password policy and the confirmation are theirs.
import { clearedSessionCookie, sessionCookie } from '../../auth/cookies.ts';
import { DomainError, ERROR_CODES } from '../../domain/errors.ts';
import { NotLoggedIn, ok, type KabutoCall, type KabutoReply } from './kabuto-call.ts';

export async function hello(call: KabutoCall): Promise<KabutoReply> {
  await call.user();
  return ok({ hello: 'world' });
}

export async function register({ services, input }: KabutoCall): Promise<KabutoReply> {
  const body = await input();
  const login = body.required('login');
  const password = body.required('password');
  const email = body.required('email');
  const { confirmationToken } = await services.users.register({ login, password, email });
  return ok({ status: 'success', token: confirmationToken });
}

export async function confirm({ services, params: [login, token] }: KabutoCall): Promise<KabutoReply> {
  try {
    await services.users.confirm(login!, token!);
    return ok({ registration: 'success' });
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    const text = error.code === 'INVALID_CONFIRMATION_TOKEN' ? 'user or token not found' : error.message;
    return ok({ registration: text });
  }
}

/**
 * A page of another origin cannot log its visitor in (login CSRF): the cookie would be ignored anyway.
 * Too many attempts (per login or address) answer 429 with Retry-After, see kabuto.ts.
 */
export async function login({ services, input, secureCookies, originAllowed, clientAddress }: KabutoCall): Promise<KabutoReply> {
  if (!originAllowed) throw new NotLoggedIn(ERROR_CODES.ORIGIN_NOT_ALLOWED);
  const body = await input();
  const name = body.required('login');
  const password = body.required('password');
  try {
    const { token, expiresAt } = await services.auth.login(name, password, clientAddress);
    return ok({ login: 'success' }, { 'set-cookie': sessionCookie(token, expiresAt, secureCookies) });
  } catch (error) {
    if (error instanceof DomainError && (error.code === 'INVALID_CREDENTIALS' || error.code === 'ACCOUNT_NOT_CONFIRMED')) {
      throw new NotLoggedIn(error.code === 'ACCOUNT_NOT_CONFIRMED' ? error.message : 'Unauthorized');
    }
    throw error;
  }
}

/** Not in Kabuto (it had no logout): ends the session the cookie holds, and clears the cookie. */
export async function logout({ services, viewer, secureCookies }: KabutoCall): Promise<KabutoReply> {
  await services.auth.logout(await viewer());
  return ok({ logout: 'success' }, { 'set-cookie': clearedSessionCookie(secureCookies) });
}
