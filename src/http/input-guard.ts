// One check for every string a client sends, made where it enters, whichever the transport: GraphQL
// arguments (variables and inline literals, over HTTP, SSE and WebSocket), graphql-ws connectionParams,
// and REST fields (JSON, form, multipart, the query string and the path). A string holding a NUL
// character or a lone UTF-16 surrogate, or longer than its cap, is refused with INVALID_INPUT naming
// the field, before any service sees it: PostgreSQL cannot store a NUL in text, and neither can be
// encoded as UTF-8 for the engine, a file name or a log. The services keep their own, tighter rules.
import { DomainError } from '../domain/errors.ts';

/**
 * Most characters (UTF-16 code units) of any string input. Above every field's own limit (a job's
 * command: 128 KiB in all; its environment: 64 KiB), so that those keep answering with their own
 * messages, and below the request bodies' 1 MiB, so that the cap can be met at all.
 */
export const MAX_STRING_LENGTH = 256 * 1024;
/**
 * Most characters of Dockerfile text (a field named `dockerfile`, in any case): the 1 MiB that a
 * JSON body, a REST field, a multipart `operations` field or a Kabuto `dockerfile` file part may carry.
 */
export const MAX_DOCKERFILE_LENGTH = 1024 * 1024;

/** Where a value sits: argument or field names, and list indexes. */
export type InputPath = readonly (string | number)[];

/** Throws INVALID_INPUT, naming `path`, when `value` is not acceptable text. */
export function checkString(value: string, path: InputPath): void {
  const problem = stringProblem(value, maxLengthAt(path));
  if (problem) throw refusal(path, problem);
}

/**
 * Checks every string in a decoded value, object keys included: arrays and plain objects are walked
 * (iteratively, with each path a link to its parent, so a deeply nested body costs neither stack nor
 * quadratic copies) to at most MAX_DEPTH levels; anything else (numbers, an upload) is left alone.
 */
export function checkInput(value: unknown, path: InputPath): void {
  const pending: [unknown, Link | null, number][] = [[value, path.reduce<Link | null>((parent, key) => ({ parent, key }), null), 0]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, at, depth] = next;
    if (typeof item === 'string') {
      const problem = stringProblem(item, maxLengthFor(at?.key));
      if (problem) throw refusal(segments(at), problem);
      continue;
    }
    const array = Array.isArray(item);
    if (!array && !isPlainObject(item)) continue;
    // Nothing a client sends is this deep; past it, other code that walks it (JSON.stringify, coercion) would recurse.
    if (depth >= MAX_DEPTH) throw refusal(segments(at), `is nested more than ${MAX_DEPTH} levels deep`);
    if (array) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], { parent: at, key: i }, depth + 1]);
    } else {
      for (const [key, member] of Object.entries(item).reverse()) {
        const link = { parent: at, key };
        const problem = stringProblem(key, MAX_NAME_LENGTH);
        if (problem) throw refusal(segments(link), `has a name that ${problem}`);
        pending.push([member, link, depth + 1]);
      }
    }
  }
}

/** `input.env[2].value`, with anything unprintable in a name escaped and long names cut. */
export function formatPath(path: InputPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += `${text === '' ? '' : '.'}${printable(segment)}`;
  }
  if (text === '') return 'the input';
  return text.length > MAX_PATH_TEXT ? `${text.slice(0, MAX_PATH_TEXT / 2)}…${text.slice(-MAX_PATH_TEXT / 2)}` : text;
}

/** A field name shown in a message is cut to this many characters (a deeply nested value has a long path). */
const MAX_PATH_TEXT = 200;

/** Arrays and objects in arrays and objects… at most this deep. */
export const MAX_DEPTH = 64;
/** Field names (object keys) are short: this is far above any real one. */
const MAX_NAME_LENGTH = 1024;

/** A path as the walk builds it: each step points at its parent. */
interface Link {
  parent: Link | null;
  key: string | number;
}

function segments(link: Link | null): (string | number)[] {
  const path: (string | number)[] = [];
  for (let at = link; at; at = at.parent) path.push(at.key);
  return path.reverse();
}

function maxLengthAt(path: InputPath): number {
  return maxLengthFor(path.at(-1));
}

/** A Dockerfile's text is the one long string: the value of a field named `dockerfile`. */
function maxLengthFor(key: string | number | undefined): number {
  return typeof key === 'string' && key.toLowerCase() === 'dockerfile' ? MAX_DOCKERFILE_LENGTH : MAX_STRING_LENGTH;
}

function stringProblem(value: string, maxLength: number): string | null {
  if (value.length > maxLength) return `is longer than ${maxLength} characters`;
  if (value.includes('\0')) return 'holds a NUL character';
  if (!value.isWellFormed()) return 'holds a lone UTF-16 surrogate (it is not valid Unicode text)';
  return null;
}

function refusal(path: InputPath, problem: string): DomainError {
  const field = formatPath(path);
  return new DomainError('INVALID_INPUT', `${field} ${problem}.`, field);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function printable(name: string): string {
  const escaped = name.replace(/[\0-\x1f\x7f]|[\uD800-\uDFFF]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const chars = [...escaped];
  return chars.length > 64 ? `${chars.slice(0, 64).join('')}…` : escaped;
}
