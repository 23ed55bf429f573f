// One log line when something the service depends on stops answering, and one when it answers again,
// instead of one per failed call (a poll that fails every second would otherwise flood the log).
export class OutageLog {
  readonly #what: string;
  readonly #log: (line: string) => void;
  #down = false;

  constructor(what: string, log: (line: string) => void = (line) => console.error(line)) {
    this.#what = what;
    this.#log = log;
  }

  get down(): boolean {
    return this.#down;
  }

  failed(error: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.#log(`${this.#what}: failing (${error instanceof Error ? error.message : String(error)}); retrying, next line when it works again`);
  }

  succeeded(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log(`${this.#what}: working again`);
  }
}
