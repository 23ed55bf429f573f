// `npm run bench [-- <scenario>…]`: runs the scenarios against a real Dockyard (a child process on
// PostgreSQL, Redis and the Docker engine) and their baselines in the same run, and prints the table.
//
//   BENCH_QUICK=1          small sizes (a smoke run of a few minutes)
//   BENCH_SOURCE=<ref>     run the servers from a snapshot of that commit (git archive into /tmp), not the working tree
//   BENCH_PROFILE=1        V8 CPU profile of each Dockyard server, summarised after its scenario
//   BENCH_TRACE=1          time the servers' engine requests and SQL queries (bench/lib/trace.ts); scenarios
//                          that know what to do with it print a breakdown (the figures are then a little slower)
//   BENCH_DATABASE_URL     PostgreSQL server to make the scratch database on (postgres://root@127.0.0.1:5432/postgres)
//   BENCH_DATABASE_NAME    the scratch database, dropped and made again at the start (dockyard_bench)
//   BENCH_REDIS_URL        Redis (redis://127.0.0.1:6379)
//   BENCH_KEEP=1           keep the data directory at the end (the database stays until the next run anyway)
//   BENCH_SERVER_NODE_ARGS extra node flags for the Dockyard servers (diagnostics: heap snapshots…)
//   BENCH_<SIZE>=n         a scenario's size (see ctx.param in the scenarios), e.g. BENCH_THROUGHPUT_SUBSCRIBERS=10
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createFixture, type Fixture } from './lib/dockyard.ts';
import { removeBenchObjects, setRunLabel, traceRawEngine } from './lib/engine.ts';
import { formatProfile, summarizeProfile } from './lib/profile.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { newestProfile, onInterrupt, recreateDatabase, startServer, type DockyardServer } from './lib/server.ts';
import { resolveSource } from './lib/source.ts';
import { num } from './lib/stats.ts';
import { WsConnection } from './lib/subscriber.ts';
import { api } from './scenarios/api.ts';
import { buildOverhead } from './scenarios/build-overhead.ts';
import { fanOut } from './scenarios/fan-out.ts';
import { jobOverhead } from './scenarios/job-overhead.ts';
import { logLatency } from './scenarios/log-latency.ts';
import { logThroughput } from './scenarios/log-throughput.ts';
import { queue } from './scenarios/queue.ts';
import { uploads } from './scenarios/uploads.ts';

const SCENARIOS: Scenario[] = [jobOverhead, buildOverhead, logLatency, logThroughput, fanOut, api, queue, uploads];

const quick = process.env.BENCH_QUICK === '1';
const profiling = process.env.BENCH_PROFILE === '1';
const tracing = process.env.BENCH_TRACE === '1';
const keep = process.env.BENCH_KEEP === '1';

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
  const unknown = names.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}; there are: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  const selected = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;

  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  setRunLabel(runId);
  if (tracing) traceRawEngine();
  const workDir = path.join(os.tmpdir(), `dockyard-bench-${runId}`);
  await mkdir(workDir, { recursive: true });
  const databaseUrl = await recreateDatabase(
    process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres',
    process.env.BENCH_DATABASE_NAME ?? 'dockyard_bench',
  );
  const source = resolveSource(process.env.BENCH_SOURCE);
  const serverBase = {
    sourceRoot: source.root,
    databaseUrl,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    workDir,
    instanceId: `bench-${runId}`,
    secretKey: randomBytes(32).toString('base64'),
  };
  const log = (message: string) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${message}`);
  console.log(`Dockyard bench ${quick ? '(quick sizes) ' : ''}— ${describeMachine()}; code ${source.describe()}; work directory ${workDir}`);

  let fixture: Fixture;
  {
    const setup = await startServer({ ...serverBase, label: 'setup', env: { BUILD_CONCURRENCY: '1', JOB_CONCURRENCY: '0' } });
    try {
      fixture = await createFixture(setup.graphqlUrl, (token) => WsConnection.open(setup.wsUrl, token));
    } finally {
      await setup.stop();
    }
    log(`set up: user ${fixture.login}, image ${fixture.imageId} (${fixture.dockerImageId.slice(0, 19)})`);
    const login = fixture.login;
    onInterrupt(() => removeBenchObjects(login));
  }

  const results: { scenario: Scenario; result: ScenarioResult | null; error?: string; seconds: number }[] = [];
  for (const scenario of selected) {
    console.log(`\n== ${scenario.name} (target ${scenario.target})`);
    const servers: DockyardServer[] = [];
    const profileDir = path.join(workDir, `profile-${scenario.name}`);
    const ctx: BenchContext = {
      quick,
      size: (full, small) => (quick ? small : full),
      param: (name, full, small) => {
        const raw = process.env[`BENCH_${name}`];
        const value = Number(raw);
        return raw !== undefined && raw !== '' && Number.isFinite(value) && value >= 0 ? value : quick ? small : full;
      },
      fixture,
      databaseUrl,
      instanceId: serverBase.instanceId,
      workDir,
      tracing,
      log,
      startServer: async (env = {}) => {
        const traceFile = tracing ? path.join(workDir, `trace-${scenario.name}-${servers.length + 1}.jsonl`) : undefined;
        const server = await startServer({ ...serverBase, label: scenario.name, env, cpuProfileDir: profiling ? profileDir : undefined, traceFile });
        servers.push(server);
        return server;
      },
    };
    const started = performance.now();
    try {
      const result = await scenario.run(ctx);
      results.push({ scenario, result, seconds: (performance.now() - started) / 1000 });
      log(`${result.met ? 'met' : 'NOT met'}: Dockyard ${result.dockyard}; baseline ${result.baseline}`);
    } catch (error) {
      results.push({ scenario, result: null, error: (error as Error).stack ?? String(error), seconds: (performance.now() - started) / 1000 });
      console.error(`  failed: ${(error as Error).stack ?? String(error)}`);
    } finally {
      for (const server of servers) await server.stop();
    }
    if (profiling) {
      const file = await newestProfile(profileDir);
      if (file) console.log(formatProfile(await summarizeProfile(file)).replace(/^/gm, '  '));
    }
  }

  await removeBenchObjects(fixture.login).catch((error: unknown) => console.error('could not remove the bench containers and images', error));
  if (!keep) await rm(path.join(workDir, 'data'), { recursive: true, force: true });

  console.log(`\n${table(results)}\n`);
  for (const { scenario, result, error, seconds } of results) {
    console.log(`${scenario.name} (${Math.round(seconds)} s):`);
    for (const note of result?.notes ?? [`failed: ${error?.split('\n')[0]}`]) console.log(`  - ${note}`);
  }
  const file = path.join(workDir, 'results.json');
  await writeFile(
    file,
    JSON.stringify({ date: new Date().toISOString(), commit: source.describe(), machine: describeMachine(), quick, results: results.map(({ scenario, result, error, seconds }) => ({ name: scenario.name, target: scenario.target, seconds, error, ...result })) }, null, 2),
  );
  console.log(`\ncode: ${source.describe()}\nresults: ${file}; server logs: ${workDir}`);
  process.exit(results.every((r) => r.result) ? 0 : 1);
}

function table(results: { scenario: Scenario; result: ScenarioResult | null }[]): string {
  const rows = results.map(({ scenario, result }) => [
    scenario.name,
    result?.dockyard ?? 'failed',
    result?.baseline ?? '',
    result?.ratio == null ? '' : `${num(result.ratio, result.ratio < 0.1 ? 3 : 2)}×`,
    scenario.target,
    result ? (result.met ? 'yes' : 'no') : 'failed',
  ]);
  const header = ['scenario', 'Dockyard', 'baseline (same run)', 'ratio', 'target', 'met'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function describeMachine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(2)}`;
}

await main();
