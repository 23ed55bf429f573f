// The images every user may build on, as the operator named them (BUILD_BASE_IMAGES), resolved to the
// engine's image ids. Only the operator's names are ever looked up on the engine; a user's FROM is
// compared with them after both are normalised (busybox = docker.io/library/busybox:latest).
import type { ContainerEngine, EngineImage } from '../../runner/engine.ts';
import { BUILD_LABEL } from './build-labels.ts';
import { canonical, parseReference, type ImageReference } from './dockerfile/reference.ts';

/** A resolved id is used for at most this long before the operator's name is looked up again. */
const FRESH_MS = 60_000;

interface Entry {
  /** The operator's spelling, given to the engine. */
  name: string;
  image: EngineImage | null;
  resolvedAt: number;
}

export class BaseImages {
  readonly #engine: ContainerEngine;
  readonly #entries = new Map<string, Entry>();

  constructor(engine: ContainerEngine, names: string[]) {
    this.#engine = engine;
    for (const name of names) {
      const reference = parseReference(name);
      if (reference) this.#entries.set(canonical(reference), { name, image: null, resolvedAt: 0 });
    }
  }

  /** The operator's names, for messages. */
  names(): string[] {
    return [...this.#entries.values()].map((entry) => entry.name);
  }

  /** Whether the operator allows this image (without asking the engine). */
  allows(reference: ImageReference): boolean {
    return this.#entries.has(canonical(reference));
  }

  /** Resolves every name now (at start); says which are missing on the engine. */
  async refresh(): Promise<void> {
    const missing: string[] = [];
    for (const entry of this.#entries.values()) {
      await this.#resolve(entry).catch(() => null);
      if (!entry.image) missing.push(entry.name);
    }
    if (missing.length > 0) console.warn(`builds: base images not on the engine, refused until they are: ${missing.join(', ')}`);
  }

  /** The allowed base image, looked up again when the last lookup is over a minute old. */
  async imageOf(reference: ImageReference): Promise<EngineImage | null> {
    const entry = this.#entries.get(canonical(reference));
    if (!entry) return null;
    if (entry.image && Date.now() - entry.resolvedAt < FRESH_MS) return entry.image;
    return this.#resolve(entry);
  }

  async #resolve(entry: Entry): Promise<EngineImage | null> {
    const image = await this.#engine.inspectImage(entry.name);
    // An image Dockyard built is a user's, whatever the operator's name now points at: never a base.
    if (image && image.labels[BUILD_LABEL] !== undefined) {
      console.warn(`builds: base image ${entry.name} is an image Dockyard built; it is not used as a base`);
      entry.image = null;
    } else {
      entry.image = image;
    }
    entry.resolvedAt = Date.now();
    return entry.image;
  }
}
