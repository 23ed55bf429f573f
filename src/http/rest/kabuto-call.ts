// What a Kabuto handler gets (the request, its user, its input) and the errors it throws, each answered
// in Kabuto's shape by the dispatcher (kabuto.ts): 401 when nobody is logged in, 400 `{"message"}` for
// a missing or refused field, and, like Kabuto, `200 {"error": "<text>"}` for everything else.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Viewer } from '../../auth/auth.service.ts';
import { DomainError } from '../../domain/errors.ts';
import type { User } from '../../domain/users/user.entity.ts';
import type { Services } from '../context.ts';
import type { SpooledFile } from './body.ts';

export interface KabutoInput {
  /** A field from the body (JSON, form or multipart) or else the query string; 400 when absent. An empty string counts. */
  required(name: string): string;
  optional(name: string): string | undefined;
  /** Files of a multipart body sent in this field. */
  files(field: string): SpooledFile[];
}

export interface KabutoCall {
  req: IncomingMessage;
  res: ServerResponse;
  services: Services;
  /** The path's captures, in order. */
  params: string[];
  query: URLSearchParams;
  /** Who is logged in (session cookie, or an API token); throws NotLoggedIn. */
  viewer(): Promise<Viewer>;
  /** The viewer's user. */
  user(): Promise<User>;
  input(): Promise<KabutoInput>;
  /** Whether cookies set now get the Secure flag. */
  secureCookies: boolean;
  /** False for a browser's request from a page of another origin (the session cookie is ignored then). */
  originAllowed: boolean;
  /** Where the request comes from (the login rate limit counts by it). */
  clientAddress: string | null;
}

/** What a handler answers: JSON with a status and headers, or SENT when it wrote the response itself. */
export type KabutoReply = JsonReply | typeof SENT;
export interface JsonReply {
  status: number;
  body: unknown;
  headers?: Record<string, string | string[]>;
}
export const SENT = Symbol('sent');

export type KabutoHandler = (call: KabutoCall) => Promise<KabutoReply>;

export function ok(body: unknown, headers?: Record<string, string | string[]>): KabutoReply {
  return headers ? { status: 200, body, headers } : { status: 200, body };
}

/** Nobody is logged in (or the credential was refused). */
export class NotLoggedIn extends Error {
  override name = 'NotLoggedIn';
}

/** A required field is absent: 400, as flask-restful's reqparse answered. */
export class MissingField extends Error {
  override name = 'MissingField';
  readonly field: string;
  constructor(field: string, message = 'Missing required parameter in the JSON body or the post body or the query string') {
    super(`[${field}]: ${message}`);
    this.field = field;
  }
}

/** An application error: Kabuto answered these `200 {"error": "<text>"}`. */
export class KabutoError extends Error {
  override name = 'KabutoError';
}

/** The service's answer, with a missing (or another user's) object told the way this Kabuto route told it. */
export async function orMissing<T>(work: Promise<T>, text: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof DomainError && error.code === 'NOT_FOUND') throw new KabutoError(text);
    throw error;
  }
}

/** An id from a field: a decimal integer, else NaN (which every service reads as missing). */
export function idOf(value: string): number {
  return /^\s*\d{1,10}\s*$/.test(value) ? Number(value) : Number.NaN;
}
