// Downloads a build-context tarball from an http(s) URL chosen by a user: every host (the first and
// each redirect target) is resolved and checked against the address policy, and the connection goes to
// the address that was checked, so DNS rebinding cannot swap it; size and time are capped.
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DomainError } from '../../errors.ts';
import type { AddressPolicy, CheckedAddress } from './address-policy.ts';
import { parseHttpUrl, resolveChecked } from './address-policy.ts';
import { redactUrl } from './repository.ts';

export interface DownloadOptions {
  maxBytes: number;
  policy: AddressPolicy;
  timeoutMs: number;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

function fetchFailed(message: string): DomainError {
  return new DomainError('SOURCE_FETCH_FAILED', message);
}

/** Streams the body of `url` (after at most 3 checked redirects) into `destFile`; removes it on failure. */
export async function downloadTarball(url: string, destFile: string, opts: DownloadOptions): Promise<void> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const response = await follow(parseHttpUrl(url), opts.policy, signal);
    await save(response.url, response.message, destFile, opts.maxBytes, signal);
  } catch (err) {
    await rm(destFile, { force: true });
    if (err instanceof DomainError) throw err;
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (timeout.aborted) throw fetchFailed(`Downloading ${redactUrl(url)} timed out after ${opts.timeoutMs} ms.`);
    throw fetchFailed(`Downloading ${redactUrl(url)} failed: ${(err as Error).message}`);
  }
}

/** Requests `url`, following redirects by hand so that each target goes through the policy again. */
async function follow(start: URL, policy: AddressPolicy, signal: AbortSignal): Promise<{ url: URL; message: IncomingMessage }> {
  let url = start;
  for (let redirects = 0; ; redirects += 1) {
    const address = await abortable(resolveChecked(url, policy), signal);
    const message = await request(url, address, signal);
    const location = message.headers.location;
    if (!REDIRECT_STATUSES.has(message.statusCode ?? 0) || !location) return { url, message };
    message.resume();
    if (redirects === MAX_REDIRECTS) throw fetchFailed(`Too many redirects (more than ${MAX_REDIRECTS}) from ${redactUrl(start)}.`);
    url = parseHttpUrl(new URL(location, url).href);
  }
}

/** One GET on a fresh connection to the checked address (the host name still goes in Host and SNI). */
function request(url: URL, address: CheckedAddress, signal: AbortSignal): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'GET',
      agent: false,
      lookup: pinnedLookup(address),
      signal,
      headers: { 'user-agent': 'dockyard', accept: '*/*', 'accept-encoding': 'identity' },
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

/** A `lookup` that answers every query with the address we checked. */
function pinnedLookup({ address, family }: CheckedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

async function save(url: URL, message: IncomingMessage, destFile: string, maxBytes: number, signal: AbortSignal): Promise<void> {
  const status = message.statusCode ?? 0;
  if (status < 200 || status > 299) {
    message.resume();
    throw fetchFailed(`Downloading ${redactUrl(url)} failed: HTTP ${status}.`);
  }
  const declared = Number(message.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    message.destroy();
    throw tooLarge(url, maxBytes);
  }
  await pipeline(message, byteCap(url, maxBytes), createWriteStream(destFile), { signal });
}

function tooLarge(url: URL, maxBytes: number): DomainError {
  return new DomainError('TOO_LARGE', `The download from ${redactUrl(url)} is over the size cap (${maxBytes} bytes).`);
}

function byteCap(url: URL, maxBytes: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      callback(total > maxBytes ? tooLarge(url, maxBytes) : null, chunk);
    },
  });
}

function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
