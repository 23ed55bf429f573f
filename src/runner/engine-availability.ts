// New work waits for the container engine instead of failing at once while it is away (restarting,
// its socket missing): before a job or a build starts, the engine is asked whether it answers, and
// while it does not (refused or reset connection, missing socket, no answer in time, a 5xx) the caller
// waits with a short backoff, up to a bound (ENGINE_WAIT_SECONDS). A 4xx is an answer: the engine is
// there, and the request that follows reports whatever it refuses.

/** Asks the engine whether it answers; rejects when it does not. */
export type EngineProbe = (signal: AbortSignal) => Promise<void>;

/** The engine did not answer within the bound: the message says so, and why. */
export class EngineUnavailable extends Error {
  override name = 'EngineUnavailable';
}

export interface EngineAvailabilityOptions {
  /** How long new work waits for an engine that does not answer (0: not at all). */
  waitMs: number;
  /** Longest one probe may take before it counts as no answer. */
  probeTimeoutMs?: number;
  /** First pause between probes; it doubles up to maxDelayMs. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export class EngineAvailability {
  readonly #probe: EngineProbe;
  readonly #options: Required<EngineAvailabilityOptions>;

  constructor(probe: EngineProbe, options: EngineAvailabilityOptions) {
    this.#probe = probe;
    this.#options = { probeTimeoutMs: 5000, minDelayMs: 200, maxDelayMs: 1000, ...options };
  }

  /**
   * Resolves once the engine answers (at once when it does). While it does not, `note` gets one line when
   * the wait begins and one when it ends. Rejects with EngineUnavailable past the bound, and with the
   * signal's reason when the signal aborts (cancel, shutdown) first.
   */
  async wait(signal: AbortSignal, note: (line: string) => void = () => {}): Promise<void> {
    const { waitMs, minDelayMs, maxDelayMs } = this.#options;
    const began = Date.now();
    let delay = minDelayMs;
    let waiting = false;
    for (;;) {
      signal.throwIfAborted();
      const failure = await this.#ask(signal);
      signal.throwIfAborted();
      if (failure === null) {
        if (waiting) note(`The engine answers again (waited ${((Date.now() - began) / 1000).toFixed(1)} s).`);
        return;
      }
      const left = began + waitMs - Date.now();
      if (left <= 0) {
        throw new EngineUnavailable(
          waitMs > 0 ? `The engine did not answer for ${formatSeconds(waitMs)} s (ENGINE_WAIT_SECONDS): ${failure}` : `The engine does not answer (ENGINE_WAIT_SECONDS is 0: no waiting): ${failure}`,
        );
      }
      if (!waiting) {
        waiting = true;
        note(`The engine does not answer (${failure}); waiting up to ${formatSeconds(waitMs)} s for it.`);
      }
      await pause(Math.min(delay, left), signal);
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }

  /** null when the engine answers, else why not. */
  async #ask(signal: AbortSignal): Promise<string | null> {
    try {
      await this.#probe(AbortSignal.any([signal, AbortSignal.timeout(this.#options.probeTimeoutMs)]));
      return null;
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const status = (error as { statusCode?: unknown } | null)?.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) return null; // an answer
      if ((error as Error | null)?.name === 'TimeoutError' || (error as Error | null)?.name === 'AbortError') return `no answer within ${formatSeconds(this.#options.probeTimeoutMs)} s`;
      return (error as Error | null)?.message || String(error);
    }
  }
}

function formatSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** Sleeps, or rejects with the signal's reason as soon as it aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
    };
    const aborted = () => {
      done();
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal.addEventListener('abort', aborted, { once: true });
  });
}
