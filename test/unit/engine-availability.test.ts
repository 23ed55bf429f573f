// The bounded wait for an engine that does not answer (src/runner/engine-availability.ts), on a fake probe,
// and which volumes the clean-up takes for a job's (isJobVolume).
import { describe, expect, it } from 'vitest';
import { EngineAvailability, EngineUnavailable } from '../../src/runner/engine-availability.ts';
import { isJobVolume, jobLabels } from '../../src/runner/docker/job-template.ts';

const refused = () => Object.assign(new Error('connect ECONNREFUSED /run/docker.sock'), { code: 'ECONNREFUSED' });

/** A probe that fails `failures` times, then answers; counts its calls. */
function flaky(failures: number, error: () => Error = refused) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    probe: async () => {
      calls++;
      if (calls <= failures) throw error();
    },
  };
}

describe('EngineAvailability', () => {
  it('returns at once, saying nothing, when the engine answers', async () => {
    const engine = flaky(0);
    const notes: string[] = [];
    await new EngineAvailability(engine.probe, { waitMs: 1000 }).wait(new AbortController().signal, (line) => notes.push(line));
    expect(engine.calls).toBe(1);
    expect(notes).toEqual([]);
  });

  it('waits with a backoff while it does not answer, with one line when the wait begins and one when it ends', async () => {
    const engine = flaky(3);
    const notes: string[] = [];
    const started = Date.now();
    await new EngineAvailability(engine.probe, { waitMs: 5000, minDelayMs: 20, maxDelayMs: 40 }).wait(new AbortController().signal, (line) => notes.push(line));
    expect(engine.calls).toBe(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 + 40 + 40 - 5);
    expect(notes).toEqual([
      'The engine does not answer (connect ECONNREFUSED /run/docker.sock); waiting up to 5 s for it.',
      expect.stringMatching(/^The engine answers again \(waited 0\.\d s\)\.$/),
    ]);
  });

  it('gives up past the bound with EngineUnavailable, saying why', async () => {
    const engine = flaky(Infinity);
    const started = Date.now();
    const waiting = new EngineAvailability(engine.probe, { waitMs: 300, minDelayMs: 20, maxDelayMs: 50 }).wait(new AbortController().signal);
    await expect(waiting).rejects.toThrow(new EngineUnavailable('The engine did not answer for 0.3 s (ENGINE_WAIT_SECONDS): connect ECONNREFUSED /run/docker.sock'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('does not wait at all when the bound is 0', async () => {
    const engine = flaky(Infinity);
    await expect(new EngineAvailability(engine.probe, { waitMs: 0 }).wait(new AbortController().signal)).rejects.toThrow(
      'The engine does not answer (ENGINE_WAIT_SECONDS is 0: no waiting): connect ECONNREFUSED /run/docker.sock',
    );
    expect(engine.calls).toBe(1);
  });

  it('takes a 4xx for an answer (the engine is there), and a 5xx for none', async () => {
    const clientError = flaky(Infinity, () => Object.assign(new Error('(HTTP code 404) page not found'), { statusCode: 404 }));
    await new EngineAvailability(clientError.probe, { waitMs: 1000 }).wait(new AbortController().signal);
    expect(clientError.calls).toBe(1);
    const serverError = flaky(2, () => Object.assign(new Error('(HTTP code 500) server error'), { statusCode: 500 }));
    await new EngineAvailability(serverError.probe, { waitMs: 1000, minDelayMs: 10 }).wait(new AbortController().signal);
    expect(serverError.calls).toBe(3);
  });

  it('counts a probe that hangs as no answer', async () => {
    let calls = 0;
    const hangs = (signal: AbortSignal) => {
      calls++;
      return calls === 1 ? new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))) : Promise.resolve();
    };
    const notes: string[] = [];
    await new EngineAvailability(hangs, { waitMs: 2000, probeTimeoutMs: 100, minDelayMs: 10 }).wait(new AbortController().signal, (line) => notes.push(line));
    expect(notes[0]).toBe('The engine does not answer (no answer within 0.1 s); waiting up to 2 s for it.');
  });

  it('stops waiting as soon as its signal aborts (cancel, shutdown), with the signal\'s reason', async () => {
    const engine = flaky(Infinity);
    const controller = new AbortController();
    const reason = new Error('canceled');
    const waiting = new EngineAvailability(engine.probe, { waitMs: 60_000, minDelayMs: 10_000 }).wait(controller.signal);
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();
    await expect(waiting).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('isJobVolume', () => {
  const labels = jobLabels({ jobId: 12, ownerId: 3, instanceId: 'a' });

  it('takes the named volumes of a job start and anonymous ones with its labels', () => {
    expect(isJobVolume('dockyard-job-12-0123abcd-inbox', labels)).toBe(true);
    expect(isJobVolume('dockyard-job-12-0123abcd-outbox', labels)).toBe(true);
    expect(isJobVolume('f'.repeat(64), labels)).toBe(true);
  });

  it('refuses a name that does not agree with the labels, or labels that are not a job\'s', () => {
    expect(isJobVolume('dockyard-job-13-0123abcd-outbox', labels)).toBe(false);
    expect(isJobVolume('dockyard-job-12-0123abcd-other', labels)).toBe(false);
    expect(isJobVolume('somebody-elses-volume', labels)).toBe(false);
    expect(isJobVolume('f'.repeat(64), {})).toBe(false);
    expect(isJobVolume('f'.repeat(64), { ...labels, 'io.dockyard.managed': 'false' })).toBe(false);
    expect(isJobVolume('f'.repeat(64), { ...labels, 'io.dockyard.job': '12x' })).toBe(false);
  });
});
