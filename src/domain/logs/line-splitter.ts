// Turns chunks of output into lines: keeps a partial last line until its end arrives (or the output
// ends), and cuts over-long lines so one line can never hold unbounded memory.
export const MAX_LINE_LENGTH = 16 * 1024;

export class LineSplitter {
  #partial = '';
  readonly #maxLength: number;

  constructor(maxLength = MAX_LINE_LENGTH) {
    this.#maxLength = maxLength;
  }

  /** The complete lines in `chunk` (with what was pending before it), without their line endings. */
  push(chunk: string): string[] {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop()!;
    const lines = parts.flatMap((line) => this.#cut(line.endsWith('\r') ? line.slice(0, -1) : line));
    if (this.#partial.length > this.#maxLength) {
      const overflow = this.#cut(this.#partial);
      this.#partial = overflow.pop()!;
      lines.push(...overflow);
    }
    return lines;
  }

  /** The last line, when the output ended without a line ending. */
  end(): string[] {
    const rest = this.#partial;
    this.#partial = '';
    return rest === '' ? [] : this.#cut(rest);
  }

  #cut(line: string): string[] {
    if (line.length <= this.#maxLength) return [line];
    const pieces: string[] = [];
    for (let i = 0; i < line.length; i += this.#maxLength) pieces.push(line.slice(i, i + this.#maxLength));
    return pieces;
  }
}
