// Checks on repository sources that need no network, run when the build is requested so that bad
// input fails the mutation itself; plus the redaction used in every message that mentions a URL.
import { DomainError } from '../../errors.ts';
import { quote } from './paths.ts';

const CONTROL_OR_SPACE = /[\s\x00-\x1f\x7f]/;
const REF_CHARACTERS = /^[A-Za-z0-9._/@+-]+$/;

/** An http(s) repository URL; anything else (file:, ext::, ssh, git://, scp-like user@host:path) is INVALID_SOURCE. */
export function checkRepositoryUrl(url: string, kind: 'git' | 'mercurial'): URL {
  const refuse = (why: string) => new DomainError('INVALID_SOURCE', `The ${kind} repository URL is not accepted: ${why}.`, 'url');
  if (CONTROL_OR_SPACE.test(url)) throw refuse('it contains spaces or control characters');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('it is not a URL (use https://host/path)');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw refuse(`only http and https are allowed, not ${parsed.protocol}`);
  if (parsed.hostname === '') throw refuse('it has no host');
  if (parsed.hash !== '') throw refuse('it may not have a #fragment');
  return parsed;
}

/** A branch, tag or commit name: plain characters only, never something a tool could read as an option. */
export function checkRef(ref: string, field = 'ref'): string {
  const refuse = (why: string) => new DomainError('INVALID_SOURCE', `The ${field} ${quote(ref)} is not accepted: ${why}.`, field);
  if (ref === '') throw refuse('it is empty');
  if (ref.length > 255) throw refuse('it is longer than 255 characters');
  if (ref.startsWith('-')) throw refuse("it may not start with '-'");
  if (!REF_CHARACTERS.test(ref)) throw refuse('only letters, digits and . _ / @ + - are allowed');
  if (ref.includes('..')) throw refuse("it may not contain '..'");
  return ref;
}

/** A URL fit for messages and logs: no user name, password, query or fragment. */
export function redactUrl(url: URL | string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Removes credentials from free text (a tool's error output): userinfo in any URL, and the URL's own secrets. */
export function redactText(text: string, url?: URL): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1');
  // Tokens often sit in the user name (https://TOKEN@host); short names are left alone to keep output readable.
  const secrets = [url?.password, url && url.username.length >= 8 ? url.username : undefined];
  for (const secret of secrets) {
    if (secret && secret.length >= 4) {
      out = out.split(secret).join('***');
      const decoded = safeDecode(secret);
      if (decoded !== secret) out = out.split(decoded).join('***');
    }
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
