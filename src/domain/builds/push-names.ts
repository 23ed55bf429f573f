// The engine pushes names, not image ids: a push needs the registry-qualified name `<registry>/<repo>:<tag>`
// on the engine. Such a name is made for one push and removed after it, whether the push succeeded,
// failed or was canceled, so no registry-qualified name stays on the engine for anyone to build on or
// push. While a push runs, no other push in this process uses its name; a name that already exists on
// the engine (another instance pushing there through the same engine) is waited for, never taken over.
import type { ContainerEngine, RegistryAuth } from '../../runner/engine.ts';

const WAIT_STEP_MS = 500;
const WAIT_MAX_MS = 120_000;

export interface PushSpec {
  imageId: string;
  /** `<registry>/<repository>`, registry-qualified (checked when the build was requested). */
  repository: string;
  tag: string;
  auth: RegistryAuth | null;
  signal: AbortSignal;
}

export class PushNames {
  readonly #engine: ContainerEngine;
  /** Names being pushed by this process, each with the promise of its push. */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(engine: ContainerEngine) {
    this.#engine = engine;
  }

  async push(spec: PushSpec, onOutput: (text: string) => void): Promise<{ digest: string | null }> {
    const name = `${spec.repository}:${spec.tag}`;
    for (let other = this.#busy.get(name); other; other = this.#busy.get(name)) await other.catch(() => {});
    const pushing = this.#pushOnce(name, spec, onOutput);
    this.#busy.set(name, pushing);
    try {
      return await pushing;
    } finally {
      this.#busy.delete(name);
    }
  }

  async #pushOnce(name: string, spec: PushSpec, onOutput: (text: string) => void): Promise<{ digest: string | null }> {
    await this.#waitUntilFree(name, spec.signal);
    try {
      await this.#engine.tagImage(spec.imageId, spec.repository, spec.tag);
      const tagged = await this.#engine.inspectImage(name);
      if (tagged?.id !== spec.imageId) throw new Error(`the name ${name} was taken on the engine while this build pushed`);
      return await this.#engine.pushImage(spec.repository, spec.tag, spec.auth, spec.signal, onOutput);
    } finally {
      // Removed only while it still names this build's image (never someone else's name).
      if ((await this.#engine.inspectImage(name).catch(() => null))?.id === spec.imageId) await this.#engine.untagImage(name);
    }
  }

  async #waitUntilFree(name: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + WAIT_MAX_MS;
    while (await this.#engine.inspectImage(name)) {
      signal.throwIfAborted();
      if (Date.now() > deadline) throw new Error(`the name ${name} is in use on the engine by another push`);
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
    }
  }
}
