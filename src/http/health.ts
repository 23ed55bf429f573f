// /healthz says the process is alive; /readyz checks each dependency separately.
export interface Check {
  ok: boolean;
  detail: string;
}

export type Checks = Record<string, () => Promise<Check>>;

export async function runChecks(checks: Checks): Promise<{ ready: boolean; checks: Record<string, Check> }> {
  const names = Object.keys(checks);
  const results = await Promise.all(
    names.map((name) => checks[name]!().catch((error: unknown): Check => ({ ok: false, detail: (error as Error).message }))),
  );
  return { ready: results.every((r) => r.ok), checks: Object.fromEntries(names.map((name, i) => [name, results[i]!])) };
}
