// What a scenario is, what it gets from the harness, and what it reports.
import type { Fixture } from './dockyard.ts';
import type { DockyardServer } from './server.ts';

export interface BenchContext {
  /** BENCH_QUICK=1: small sizes, for a smoke run. */
  quick: boolean;
  /** The full size, or the quick one. */
  size<T>(full: T, quick: T): T;
  /** A fresh Dockyard process on the bench database, with these settings on top of the defaults. */
  startServer(env?: Record<string, string>): Promise<DockyardServer>;
  fixture: Fixture;
  databaseUrl: string;
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
