// An HTTP proxy on 127.0.0.1 for one source fetch by a tool that connects by itself (hg): every
// request the tool makes (the first, each redirect target, any other URL) names its destination to the
// proxy, which resolves it, checks every address against the AddressPolicy and connects to the address
// it checked, or answers 403. Plain http arrives as absolute-URI requests and is forwarded; https
// arrives as CONNECT and is tunnelled (TLS stays end to end between the tool and the server). A proxy
// serves one run: a port the OS picks, credentials only that run is given, and close() afterwards.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { DomainError } from '../../errors.ts';
import type { AddressPolicy, CheckedAddress } from './address-policy.ts';
import { hostOf, resolveChecked } from './address-policy.ts';

export interface EgressProxy {
  /** `http://127.0.0.1:PORT`, without credentials. */
  url: string;
  /** `127.0.0.1:PORT`. */
  hostPort: string;
  /** Basic credentials that every request must carry in Proxy-Authorization (407 otherwise). */
  user: string;
  password: string;
  /** Hosts refused by the policy so far, in order, as the client named them. */
  readonly refused: readonly string[];
  /** Stops listening and ends every connection and tunnel. */
  close(): Promise<void>;
}

/** Headers that belong to one connection, never passed on (plus those the Connection header names). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `host:port` of a CONNECT request: a name, an IPv4 address or a bracketed IPv6 address, and a port. */
const CONNECT_TARGET = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

type Verdict = { ok: true; address: CheckedAddress } | { ok: false; status: 403 | 502; reason: string };

export async function startEgressProxy(policy: AddressPolicy): Promise<EgressProxy> {
  const user = 'dockyard';
  const password = randomBytes(24).toString('hex');
  const expected = Buffer.from(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
  const refused: string[] = [];
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const authorized = (req: IncomingMessage): boolean => {
    const given = Buffer.from(req.headers['proxy-authorization'] ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  /** Resolves and checks the destination; a policy refusal is recorded and answered 403. */
  const check = async (url: URL): Promise<Verdict> => {
    try {
      return { ok: true, address: await resolveChecked(url, policy) };
    } catch (err) {
      if (err instanceof DomainError && err.code === 'URL_NOT_ALLOWED') {
        refused.push(hostOf(url));
        return { ok: false, status: 403, reason: 'Forbidden' };
      }
      return { ok: false, status: 502, reason: 'Bad Gateway (cannot resolve the host)' };
    }
  };

  /** A plain-http request in absolute form (`GET http://host:port/path HTTP/1.1`), forwarded. */
  const forward = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!authorized(req)) return answer(res, 407, 'Proxy Authentication Required', { 'proxy-authenticate': 'Basic realm="dockyard"' });
    const target = absoluteHttpUrl(req.url ?? '');
    if (!target) return answer(res, 400, 'Bad Request');
    const verdict = await check(target);
    if (!verdict.ok) return answer(res, verdict.status, verdict.reason);
    if (res.destroyed) return;
    const upstream = http.request({
      host: verdict.address.address,
      family: verdict.address.family,
      port: Number(target.port || 80),
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers: { ...endToEnd(req.headers), host: target.host },
      setHost: false,
      agent: false,
    });
    upstream.once('response', (message) => {
      message.on('error', () => res.destroy());
      res.writeHead(message.statusCode ?? 502, message.statusMessage, endToEnd(message.headers));
      message.pipe(res);
    });
    // Either side may go away at any moment: no stream error may be left unhandled in the service.
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (res.headersSent) res.destroy();
      else answer(res, 502, `Bad Gateway (${err.code ?? 'connection failed'})`);
    });
    req.on('error', () => upstream.destroy());
    res.on('error', () => upstream.destroy());
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
  };

  /** `CONNECT host:port` (https): a raw tunnel to the checked address. */
  const tunnel = async (req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> => {
    client.on('error', () => client.destroy());
    const reply = (status: number, reason: string, extra = '') =>
      client.end(`HTTP/1.1 ${status} ${reason}\r\n${extra}Connection: close\r\nContent-Length: 0\r\n\r\n`);
    if (!authorized(req)) return void reply(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="dockyard"\r\n');
    const target = connectTarget(req.url ?? '');
    if (!target) return void reply(400, 'Bad Request');
    const verdict = await check(target.url);
    if (!verdict.ok) return void reply(verdict.status, verdict.reason);
    if (client.destroyed) return;
    const upstream = net.connect({ host: verdict.address.address, family: verdict.address.family, port: target.port });
    track(upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) client.destroy();
      else reply(502, `Bad Gateway (${err.code ?? 'connection failed'})`);
    });
    upstream.once('close', () => {
      if (connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
  };

  const server = http.createServer((req, res) => {
    void forward(req, res).catch(() => res.destroy());
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    void tunnel(req, client, head).catch(() => client.destroy());
  });
  server.on('connection', (socket: Socket) => track(socket));
  server.on('clientError', (_err, socket: Duplex) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const hostPort = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${hostPort}`,
    hostPort,
    user,
    password,
    refused,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}

function answer(res: ServerResponse, status: number, reason: string, headers: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, reason, { ...headers, 'content-type': 'text/plain', 'content-length': 0, connection: 'close' });
  res.end();
}

/** The request target when it is an absolute http URL; anything else (origin form, https, other schemes) is null. */
function absoluteHttpUrl(raw: string): URL | null {
  if (!/^http:\/\//i.test(raw)) return null;
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' && url.hostname !== '' ? url : null;
  } catch {
    return null;
  }
}

function connectTarget(raw: string): { url: URL; port: number } | null {
  const match = CONNECT_TARGET.exec(raw);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  try {
    return { url: new URL(`https://${match[1]}:${port}/`), port };
  } catch {
    return null;
  }
}

/** The headers to pass on: without hop-by-hop ones and without those the Connection header names. */
function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase());
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.includes(name)) out[name] = value;
  }
  return out;
}
