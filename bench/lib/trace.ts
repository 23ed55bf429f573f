// Preloaded into the Dockyard server (`node --import ./bench/lib/trace.ts src/main.ts`) when a scenario
// asks for a trace: times every Docker engine request (docker-modem's dial) and every PostgreSQL query
// (pg's Client#query) and appends one JSON line per call to $BENCH_TRACE_FILE. Nothing in src/ changes;
// the server loads the same module instances, so its own calls are the ones timed.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const file = process.env.BENCH_TRACE_FILE;
const require = createRequire(path.join(import.meta.dirname, '../../package.json'));

export interface TraceEvent {
  kind: 'engine' | 'sql';
  /** Wall-clock start, ms since the epoch. */
  at: number;
  ms: number;
  what: string;
}

/** The statement without its literal values (so that calls group), shortened: comments out, literals as `?`. */
function normalizeSql(text: string): string {
  return text
    .replace(/--[^\n]*\n/g, ' ')
    .replace(/'[^']*'/g, '?')
    .replace(/\b\d+\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 110);
}

if (file) {
  let buffer: string[] = [];
  const record = (event: TraceEvent) => {
    buffer.push(JSON.stringify(event));
    if (buffer.length >= 200) flush();
  };
  const flush = () => {
    if (buffer.length === 0) return;
    appendFileSync(file, `${buffer.join('\n')}\n`);
    buffer = [];
  };
  setInterval(flush, 200).unref();
  process.on('exit', flush);

  const Modem = require('docker-modem') as { prototype: { dial(options: { method: string; path: string }, callback: (...args: unknown[]) => void): void } };
  const dial = Modem.prototype.dial;
  Modem.prototype.dial = function (options, callback) {
    const at = Date.now();
    const start = performance.now();
    const what = `${options.method} ${options.path.replace(/\?.*$/, '').replace(/[0-9a-f]{64}/g, ':id').replace(/dockyard-job-[\w-]+/g, ':name')}`;
    return dial.call(this, options, (...args: unknown[]) => {
      record({ kind: 'engine', at, ms: performance.now() - start, what });
      callback(...args);
    });
  };

  const pg = require('pg') as { Client: { prototype: { query(...args: unknown[]): unknown } } };
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (...args: unknown[]) {
    const at = Date.now();
    const start = performance.now();
    const config = args[0];
    const text = typeof config === 'string' ? config : ((config as { text?: string } | null)?.text ?? '');
    const result = query.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      void (result as Promise<unknown>).then(
        () => record({ kind: 'sql', at, ms: performance.now() - start, what: normalizeSql(text) }),
        () => record({ kind: 'sql', at, ms: performance.now() - start, what: `(failed) ${normalizeSql(text)}` }),
      );
    }
    return result;
  };
}
