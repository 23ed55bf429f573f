// Reading what trace.ts recorded: the calls in a time window, as a timeline or grouped by call.
import { readFile } from 'node:fs/promises';
import { rawTrace } from './engine.ts';
import { median } from './stats.ts';
import type { TraceEvent } from './trace.ts';

export async function readTrace(file: string): Promise<TraceEvent[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as TraceEvent)
    .sort((a, b) => a.at - b.at);
}

export function within(events: TraceEvent[], from: number, to: number): TraceEvent[] {
  return events.filter((e) => e.at >= from && e.at < to);
}

/** One line per call, as `+offset ms  duration ms  what`, from `from`. */
export function timeline(events: TraceEvent[], from: number): string[] {
  return events.map((e) => `+${String(e.at - from).padStart(5)} ms  ${e.ms.toFixed(1).padStart(7)} ms  ${e.kind.padEnd(6)} ${e.what}`);
}

/** Calls grouped by what they are: count per window, median and total time, most time first. */
export function grouped(windows: TraceEvent[][]): string[] {
  const groups = new Map<string, { kind: string; durations: number[] }>();
  for (const events of windows) {
    for (const e of events) {
      const key = `${e.kind} ${e.what}`;
      const group = groups.get(key) ?? { kind: e.kind, durations: [] };
      group.durations.push(e.ms);
      groups.set(key, group);
    }
  }
  return [...groups]
    .map(([what, { durations }]) => ({ what, perRun: durations.length / windows.length, med: median(durations), total: durations.reduce((a, b) => a + b, 0) / windows.length }))
    .sort((a, b) => b.total - a.total)
    .map((g) => `${g.perRun.toFixed(1).padStart(6)}×  median ${g.med.toFixed(1).padStart(6)} ms  total/run ${g.total.toFixed(1).padStart(7)} ms  ${g.what}`);
}

/**
 * Where the time of a Dockyard run goes: every engine request and SQL query of the server between the
 * start and the end of each run (the last one as a timeline), and the raw runs' engine requests.
 */
export async function printBreakdown(log: (message: string) => void, traceFile: string, dockyardWindows: [number, number][], rawWindows: [number, number][]): Promise<void> {
  const events = await readTrace(traceFile);
  const runs = dockyardWindows.map(([from, to]) => within(events, from, to));
  const [from, to] = dockyardWindows.at(-1)!;
  const indent = (lines: string[]) => lines.map((line) => `      ${line}`).join('\n');
  log(`trace of the last Dockyard run (${to - from} ms, calls by start time):\n${indent(timeline(runs.at(-1)!, from))}`);
  log(`Dockyard's calls per run (all runs):\n${indent(grouped(runs))}`);
  if (rawWindows.length > 0) log(`raw engine calls per run:\n${indent(grouped(rawWindows.map(([f, t]) => within(rawTrace, f, t))))}`);
}
