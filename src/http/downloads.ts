// Job results over plain HTTP: `GET /jobs/<id>/results.zip` (every file of /outbox, zipped as it is
// sent) and `GET /jobs/<id>/results/<path>` (one file). The session cookie or an API token; only the
// owner: another user's job reads like a missing one.
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { ZipArchive } from 'archiver';
import type { Job } from '../domain/jobs/job.entity.ts';
import { DomainError } from '../domain/errors.ts';
import { contextForRequest, type Services } from './context.ts';
import type { OriginPolicy } from './origins.ts';

const ROUTE = /^\/jobs\/(\d{1,10})\/results(?:\.zip|\/(.+))$/;

export function isDownload(pathname: string): boolean {
  return ROUTE.test(pathname);
}

export async function serveDownload(services: Services, policy: OriginPolicy, req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
  const [, id, encodedPath] = ROUTE.exec(pathname)!;
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'METHOD_NOT_ALLOWED', 'Use GET.');
  const context = await contextForRequest(services, policy, req, { responseCookies: null });
  if (!context.viewer) {
    const error = context.authError ?? new DomainError('UNAUTHENTICATED');
    return fail(res, 401, error.code, error.message);
  }
  try {
    const user = context.viewer.user;
    if (encodedPath === undefined) {
      const job = await services.jobs.get(user, Number(id));
      if (job.results.length === 0) throw new DomainError('NOT_FOUND', 'The job has no results (yet).');
      res.writeHead(200, { 'content-type': 'application/zip', 'content-disposition': `attachment; filename="job-${job.id}-results.zip"` });
      if (req.method === 'HEAD') return void res.end();
      await sendResultsZip(services.jobs.outboxDir(job), job, res);
    } else {
      const { result, file } = await services.jobs.resultFile(user, Number(id), decodePath(encodedPath));
      const name = result.path.split('/').pop()!;
      // An ASCII fallback, and the exact name for clients that read RFC 6266's filename*.
      const disposition = `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': result.size, 'content-disposition': disposition });
      if (req.method === 'HEAD') return void res.end();
      await pipeline(createReadStream(file), res);
    }
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    return fail(res, error.code === 'NOT_FOUND' ? 404 : 400, error.code, error.message);
  }
}

/** A malformed escape names no result. */
function decodePath(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new DomainError('NOT_FOUND', 'No such result file.');
  }
}

/** Zips every result file of the job as it is sent (nothing is assembled in memory or on disk). */
export async function sendResultsZip(outbox: string, job: Job, res: ServerResponse): Promise<void> {
  const zip = new ZipArchive({ zlib: { level: 6 } });
  for (const result of job.results) zip.file(path.join(outbox, ...result.path.split('/')), { name: result.path });
  void zip.finalize();
  await pipeline(zip, res);
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ error: message, code }));
}
