// What a scenario is, what it gets from the harness, and what it reports.
import type { Fixture } from './dockyard.ts';
import type { DockyardServer } from './server.ts';

export interface BenchContext {
  /** BENCH_QUICK=1: small sizes, for a smoke run. */
  quick: boolean;
  /** The full size, or the quick one. */
  size<T>(full: T, quick: T): T;
  /** A size that can also be set from the environment, as BENCH_<NAME> (e.g. to record a reduced size). */
  param(name: string, full: number, quick: number): number;
  /** A fresh Dockyard process on the bench database, with these settings on top of the defaults. */
  startServer(env?: Record<string, string>): Promise<DockyardServer>;
  fixture: Fixture;
  databaseUrl: string;
  /** This run's scratch directory (server logs, profiles, traces, results.json). */
  workDir: string;
  /** INSTANCE_ID of the bench servers: their job containers carry it as io.dockyard.instance. */
  instanceId: string;
  /** BENCH_TRACE=1: servers record their engine requests and SQL queries (server.traceFile). */
  tracing: boolean;
  log(message: string): void;
}

export interface ScenarioResult {
  /** The figure for Dockyard, with its spread. */
  dockyard: string;
  /** The baseline measured in the same run. */
  baseline: string;
  /** Dockyard ÷ baseline, on the figure the target is about (or the closest one). */
  ratio: number | null;
  met: boolean;
  /** Sizes used, how it was measured, breakdowns: printed under the table. */
  notes: string[];
  /** The numbers, for results.json. */
  data: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  /** The target in words, e.g. "≤ 1.10× raw". */
  target: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

/** Runs `a` and `b` `rounds` times each, alternating which goes first (ABBA…), so drift hits both. */
export async function alternate<A, B>(rounds: number, a: (round: number) => Promise<A>, b: (round: number) => Promise<B>): Promise<{ a: A[]; b: B[] }> {
  const results = { a: [] as A[], b: [] as B[] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      results.a.push(await a(round));
      results.b.push(await b(round));
    } else {
      results.b.push(await b(round));
      results.a.push(await a(round));
    }
  }
  return results;
}
