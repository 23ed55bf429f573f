// Serves files over http on loopback (tarball URLs), stopped after the file's tests.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll } from 'vitest';

export interface FileServer {
  /** Path (e.g. `/context.tar.gz`) → body; anything else is a 404. */
  files: Map<string, Uint8Array>;
  url(urlPath: string): string;
  /** The paths asked for so far, in order. */
  requests(): string[];
}

export async function startFileServer(): Promise<FileServer> {
  const files = new Map<string, Uint8Array>();
  const requested: string[] = [];
  const server = createServer((req, res) => {
    requested.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { files, requests: () => [...requested], url: (urlPath) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${urlPath}` };
}
