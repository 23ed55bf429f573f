// Small statistics for benchmark samples: medians, percentiles and the spread between runs, and the
// way figures are printed in the table.

/** The p-th percentile (0–100) of the samples, nearest-rank on a sorted copy. NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p95: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: median(samples),
    min: samples.length ? Math.min(...samples) : Number.NaN,
    max: samples.length ? Math.max(...samples) : Number.NaN,
    p95: percentile(samples, 95),
  };
}

/** Latency percentiles of many samples (the large arrays of per-line latencies). */
export function latencies(samples: readonly number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]! : Number.NaN);
  return { n: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
}

/** A number with a sensible number of digits and thousands separators. */
export function num(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** `412 ms (398–455, n=10)`: the median with the range of the runs. */
export function withSpread(summary: Summary, unit: string, digits?: number): string {
  if (summary.n <= 1) return `${num(summary.median, digits)} ${unit}`;
  return `${num(summary.median, digits)} ${unit} (${num(summary.min, digits)}–${num(summary.max, digits)}, n=${summary.n})`;
}

export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}

export const MiB = 2 ** 20;

/** Two sets of times (ms) side by side: medians with their spread, the ratio, and whether it is within `target`. */
export function compareTimes(dockyardMs: readonly number[], baselineMs: readonly number[], target: number): { dockyard: string; baseline: string; ratio: number; met: boolean } {
  const dockyard = summarize(dockyardMs);
  const baseline = summarize(baselineMs);
  const r = ratio(dockyard.median, baseline.median);
  return { dockyard: withSpread(dockyard, 'ms', 0), baseline: withSpread(baseline, 'ms', 0), ratio: r, met: r <= target };
}
