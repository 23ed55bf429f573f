// A closed-loop HTTP load generator: `connections` keep-alive connections, each sending the next
// request as soon as the previous answer has been read, for `durationMs`. Counts answers per second.
import http from 'node:http';
import { latencies } from './stats.ts';

export interface LoadResult {
  requests: number;
  rps: number;
  errors: number;
  latency: ReturnType<typeof latencies>;
}

export async function load(url: string, body: string, headers: Record<string, string>, connections: number, durationMs: number): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const payload = Buffer.from(body);
  const options: http.RequestOptions = {
    agent,
    host: target.hostname,
    port: target.port,
    path: target.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': String(payload.length), ...headers },
  };
  const times: number[] = [];
  let errors = 0;
  let stopping = false;
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      const req = http.request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          if (res.statusCode !== 200 || Buffer.concat(chunks).includes('"errors"')) errors++;
          else times.push(performance.now() - start);
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(payload);
    });
  const started = performance.now();
  const timer = setTimeout(() => (stopping = true), durationMs);
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (!stopping) await one();
    }),
  );
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { requests: times.length, rps: times.length / seconds, errors, latency: latencies(times) };
}
