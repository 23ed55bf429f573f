// The one HTTP server: GraphQL over HTTP and WebSocket at /graphql, health probes, and graceful shutdown.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { GRAPHQL_PATH, MAX_GRAPHQL_BODY, type Yoga } from '../graphql/yoga.ts';
import { asServiceUnavailable } from '../db/availability.ts';
import type { EventBus } from '../events/pubsub.ts';
import { serveGraphqlWs } from '../graphql/ws.ts';
import { readCredential, type Services } from './context.ts';
import { isDownload, serveDownload } from './downloads.ts';
import { runChecks, type Checks } from './health.ts';
import { originAllowed, type OriginPolicy } from './origins.ts';

export interface HttpServerOptions {
  yoga: Yoga;
  /** The REST compatibility routes: answers what it knows, leaves the rest. */
  rest: (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean>;
  bus: EventBus;
  services: Services;
  checks: Checks;
  policy: OriginPolicy;
  /** WebSocket messages larger than this are refused. */
  maxWsPayload?: number;
}

export interface HttpServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, closes WebSockets (1001), lets in-flight requests finish within `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export function createHttpServer({ yoga, rest, bus, services, checks, policy, maxWsPayload = 64 * 1024 }: HttpServerOptions): HttpServer {
  let closing = false;

  const server = createServer((req, res) => {
    // Responses sent while shutting down end their connection, so keep-alive cannot hold it open.
    if (closing) res.setHeader('connection', 'close');
    route(req, res).catch((error: unknown) => {
      const unavailable = asServiceUnavailable(error);
      if (!unavailable) console.error('request failed', error);
      if (res.headersSent) res.destroy();
      else if (unavailable) json(res, 503, { error: unavailable.message, code: unavailable.code }, { 'retry-after': String(unavailable.retryAfterSeconds) });
      else json(res, 500, { error: 'internal error' });
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (pathname === GRAPHQL_PATH) {
      if (tooLargeForJson(req)) return json(res, 413, { errors: [{ message: `A GraphQL request without files is limited to ${MAX_GRAPHQL_BODY} bytes.`, extensions: { code: 'TOO_LARGE' } }] });
      return void (await yoga.requestListener(req, res));
    }
    if (isDownload(pathname)) return serveDownload(services, policy, req, res, pathname);
    if (pathname === '/healthz') return json(res, 200, { status: 'ok' });
    if (pathname === '/readyz') {
      const { ready, checks: results } = await runChecks(checks);
      return json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks: results });
    }
    if (pathname === '/') {
      res.writeHead(302, { location: GRAPHQL_PATH }).end();
      return;
    }
    if (await rest(req, res, pathname)) return;
    json(res, 404, { error: 'not found' });
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxWsPayload });
  const ws = serveGraphqlWs(wss, yoga, bus);

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node drops its own error handler before 'upgrade': a reset socket would otherwise crash the process.
    socket.on('error', () => socket.destroy());
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const encrypted = Boolean((req.socket as TLSSocket).encrypted);
    if (closing || pathname !== GRAPHQL_PATH) return refuseUpgrade(socket, closing ? 503 : 404);
    // Cross-site WebSocket hijacking: a page from another origin must not ride on the session cookie.
    if (readCredential({ cookie: req.headers.cookie }) && !originAllowed(req.headers, encrypted, policy)) {
      return refuseUpgrade(socket, 403);
    }
    wss.handleUpgrade(req, socket, head, (client) => wss.emit('connection', client, req));
  });

  return {
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async (graceMs) => {
      closing = true;
      // Past the grace period, whatever is still open is cut: WebSocket peers that never answer the
      // close frame included.
      const deadline = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
      }, graceMs);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      await ws.dispose();
      await closed;
      clearInterval(idleSweep);
      clearTimeout(deadline);
      await yoga.dispose();
    },
  };
}

/** Bodies other than multipart uploads are small; a larger declared length is refused before it is read. */
function tooLargeForJson(req: IncomingMessage): boolean {
  if (req.headers['content-type']?.startsWith('multipart/form-data')) return false;
  return Number(req.headers['content-length'] ?? 0) > MAX_GRAPHQL_BODY;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function refuseUpgrade(socket: Duplex, status: 403 | 404 | 503): void {
  const text = { 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status];
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}
