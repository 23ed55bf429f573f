// `npm run bench [-- <scenario>…]`: runs the scenarios against a real Dockyard (a child process on
// PostgreSQL, Redis and the Docker engine) and their baselines in the same run, and prints the table.
//
//   BENCH_QUICK=1          small sizes (a smoke run of a few minutes)
//   BENCH_PROFILE=1        V8 CPU profile of each Dockyard server, summarised after its scenario
//   BENCH_DATABASE_URL     PostgreSQL server to make the scratch database on (postgres://root@127.0.0.1:5432/postgres)
//   BENCH_DATABASE_NAME    the scratch database, dropped and made again at the start (dockyard_bench)
//   BENCH_REDIS_URL        Redis (redis://127.0.0.1:6379)
//   BENCH_KEEP=1           keep the database and the data directory at the end
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createFixture, type Fixture } from './lib/dockyard.ts';
import { removeBenchObjects, setRunLabel } from './lib/engine.ts';
import { formatProfile, summarizeProfile } from './lib/profile.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { newestProfile, recreateDatabase, ROOT, startServer, type DockyardServer } from './lib/server.ts';
import { num } from './lib/stats.ts';
import { WsConnection } from './lib/subscriber.ts';
import { jobOverhead } from './scenarios/job-overhead.ts';

export const SCENARIOS: Scenario[] = [jobOverhead];

const quick = process.env.BENCH_QUICK === '1';
const profiling = process.env.BENCH_PROFILE === '1';
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
  const workDir = path.join(os.tmpdir(), `dockyard-bench-${runId}`);
  await mkdir(workDir, { recursive: true });
  const databaseUrl = await recreateDatabase(
    process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres',
    process.env.BENCH_DATABASE_NAME ?? 'dockyard_bench',
  );
  const serverBase = {
    databaseUrl,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    workDir,
    instanceId: `bench-${runId}`,
    secretKey: randomBytes(32).toString('base64'),
  };
  const log = (message: string) => console.log(`  ${new Date().toISOString().slice(11, 19)} ${message}`);
  console.log(`Dockyard bench ${quick ? '(quick sizes) ' : ''}— ${describeMachine()}; work directory ${workDir}`);

  let fixture: Fixture;
  {
    const setup = await startServer({ ...serverBase, label: 'setup', env: { BUILD_CONCURRENCY: '1', JOB_CONCURRENCY: '0' } });
    try {
      fixture = await createFixture(setup.graphqlUrl, (token) => WsConnection.open(setup.wsUrl, token));
    } finally {
      await setup.stop();
    }
    log(`set up: user ${fixture.login}, image ${fixture.imageId} (${fixture.dockerImageId.slice(0, 19)})`);
  }

  const results: { scenario: Scenario; result: ScenarioResult | null; error?: string; seconds: number }[] = [];
  for (const scenario of selected) {
    console.log(`\n== ${scenario.name} (target ${scenario.target})`);
    const servers: DockyardServer[] = [];
    const profileDir = path.join(workDir, `profile-${scenario.name}`);
    const ctx: BenchContext = {
      quick,
      size: (full, small) => (quick ? small : full),
      fixture,
      databaseUrl,
      log,
      startServer: async (env = {}) => {
        const server = await startServer({ ...serverBase, label: scenario.name, env, cpuProfileDir: profiling ? profileDir : undefined });
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

  await removeBenchObjects().catch((error: unknown) => console.error('could not remove the bench containers and images', error));
  if (!keep) await rm(path.join(workDir, 'data'), { recursive: true, force: true });

  console.log(`\n${table(results)}\n`);
  for (const { scenario, result, error, seconds } of results) {
    console.log(`${scenario.name} (${Math.round(seconds)} s):`);
    for (const note of result?.notes ?? [`failed: ${error?.split('\n')[0]}`]) console.log(`  - ${note}`);
  }
  const file = path.join(workDir, 'results.json');
  await writeFile(
    file,
    JSON.stringify({ date: new Date().toISOString(), commit: commit(), machine: describeMachine(), quick, results: results.map(({ scenario, result, error, seconds }) => ({ name: scenario.name, target: scenario.target, seconds, error, ...result })) }, null, 2),
  );
  console.log(`\nresults: ${file}; server logs: ${workDir}`);
  process.exit(results.every((r) => r.result) ? 0 : 1);
}

function table(results: { scenario: Scenario; result: ScenarioResult | null }[]): string {
  const rows = results.map(({ scenario, result }) => [
    scenario.name,
    result?.dockyard ?? 'failed',
    result?.baseline ?? '',
    result?.ratio == null ? '' : `${num(result.ratio, 2)}×`,
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

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    // --no-optional-locks: reading the status must not rewrite the index another engineer may be using.
    const dirty = execFileSync('git', ['--no-optional-locks', 'status', '--porcelain', '--', 'src', 'migrations'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${head} (with uncommitted changes in src/ or migrations/)` : head;
  } catch {
    return 'unknown';
  }
}

await main();
