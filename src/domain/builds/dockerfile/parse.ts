// Reads a Dockerfile by the Docker engine's own rules (the classic builder's parser), so that the
// instructions the service checks and rewrites are the instructions the engine would run:
// - parser directives only at the very top: each line is tried as `# escape=<c>`; the first line that is
//   not one (an unknown directive, any other comment, an empty line, an instruction) ends them for good;
// - a line ending in the escape character (then only spaces or tabs) continues on the next line, joined
//   as it is; comment lines and blank lines inside a continuation are dropped;
// - the instruction is the first word (case-insensitive), then leading `--flags`, then the rest.
// The differential test (test/integration/dockerfile-engine.test.ts) builds a corpus on the real engine
// and checks that it reads every file exactly as this does.
import { DomainError } from '../../errors.ts';

export type EscapeChar = '\\' | '`';

export interface Instruction {
  /** 1-based line numbers of the instruction's first and last physical lines. */
  startLine: number;
  endLine: number;
  /** Lower case, as the engine compares it. */
  keyword: string;
  /** The logical line (continuations joined), trimmed: what the engine prints as `Step n/m : …`. */
  original: string;
  /** Leading `--name[=value]` words, as the engine extracts them (quotes removed). */
  flags: string[];
  /** The arguments after the flags, trimmed. */
  rest: string;
}

export interface ParsedDockerfile {
  escape: EscapeChar;
  instructions: Instruction[];
}

/** The engine reads lines with Go's bufio.Scanner, whose default limit is 64 KiB a line. */
const MAX_LINE_BYTES = 64 * 1024 - 1;
const BOM = '\uFEFF';
const ESCAPE_DIRECTIVE = /^#[ \t]*escape[ \t]*=[ \t]*([^\n])[^\n]*$/;
/** Go's unicode.IsSpace: the Latin-1 spaces and the Unicode White_Space property (no U+FEFF, unlike JS's \s). */
const SPACE = '\t\n\v\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000';
const LEADING_SPACE = new RegExp(`^[${SPACE}]+`);
const TRAILING_SPACE = new RegExp(`[${SPACE}]+$`);
/** The separator of an instruction's words (the engine's tokenWhitespace). */
export const WORD_SEPARATOR = /[\t\v\f\r ]+/;

export function refuse(line: number | null, message: string): DomainError {
  return new DomainError('INVALID_DOCKERFILE', line === null ? message : `Line ${line}: ${message}`, 'dockerfile');
}

/** The engine's reading, with the service's one extra refusal: an escape directive the engine would ignore. */
export function parseDockerfile(text: string): ParsedDockerfile {
  const lines = splitLines(text);
  const parsed = readLines(lines);
  refuseIgnoredEscape(lines, parsed.escapeLine);
  return parsed;
}

/** Exactly the engine's reading (the differential test compares it with the engine's). */
export function readDockerfile(text: string): ParsedDockerfile & { escapeLine: number } {
  return readLines(splitLines(text));
}

function readLines(lines: string[]): ParsedDockerfile & { escapeLine: number } {
  const directives = new Directives();
  const instructions: Instruction[] = [];
  let index = 0;
  while (index < lines.length) {
    const first = trimLeft(lines[index]!);
    index += 1;
    directives.consider(first, index);
    const startLine = index;
    let { text: line, ends } = directives.trimContinuation(isComment(first) ? '' : first);
    if (ends && line === '') continue;
    while (!ends && index < lines.length) {
      const next = lines[index]!;
      index += 1;
      directives.consider(next, index);
      if (isComment(next) || trimLeft(next) === '') continue;
      const segment = directives.trimContinuation(next);
      line += segment.text;
      ends = segment.ends;
    }
    instructions.push(toInstruction(line, startLine, index));
  }
  return { escape: directives.escape, instructions, escapeLine: directives.escapeLine };
}

/**
 * An escape directive below the point where the engine stopped reading directives (after a comment, a
 * blank line or another directive) is a comment to the engine; engines of other versions read such
 * headers differently, so it is refused rather than read one way or the other.
 */
function refuseIgnoredEscape(lines: string[], honoured: number): void {
  for (const [i, raw] of lines.entries()) {
    const line = trimLeft(raw);
    if (line !== '' && !line.startsWith('#')) return;
    if (i + 1 !== honoured && ESCAPE_DIRECTIVE.test(line.toLowerCase())) {
      throw refuse(i + 1, 'this escape directive would be ignored by the engine: parser directives must be the first lines, before any other comment or blank line.');
    }
  }
}

/** The physical lines as the engine's scanner gives them: split at \n, one trailing \r dropped, BOM dropped. */
function splitLines(text: string): string[] {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  const lines = body.split('\n');
  if (lines.at(-1) === '') lines.pop(); // the text's final newline ends the last line; it starts none
  return lines.map((line, i) => {
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) throw refuse(i + 1, 'the line is longer than the engine reads (64 KiB).');
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  });
}

class Directives {
  escape: EscapeChar = '\\';
  /** The line of the escape directive the engine honours (0: none). */
  escapeLine = 0;
  #seen = false;
  #done = false;
  #continuation = /\\[ \t]*$/;

  /** Every line is offered until the first one that is not an escape directive. */
  consider(line: string, lineNumber: number): void {
    if (this.#done) return;
    const match = ESCAPE_DIRECTIVE.exec(line.toLowerCase());
    if (!match) {
      this.#done = true;
      return;
    }
    if (this.#seen) throw refuse(lineNumber, 'only one escape parser directive can be used.');
    this.#seen = true;
    this.escapeLine = lineNumber;
    const char = match[1]!;
    if (char !== '\\' && char !== '`') throw refuse(lineNumber, `invalid escape character "${char}": use \\ or \`.`);
    this.escape = char;
    this.#continuation = char === '`' ? /`[ \t]*$/ : /\\[ \t]*$/;
  }

  trimContinuation(line: string): { text: string; ends: boolean } {
    return this.#continuation.test(line) ? { text: line.replace(this.#continuation, ''), ends: false } : { text: line, ends: true };
  }
}

function isComment(line: string): boolean {
  return trimLeft(line).startsWith('#');
}

export function trimLeft(s: string): string {
  return s.replace(LEADING_SPACE, '');
}

export function trimSpace(s: string): string {
  return trimLeft(s).replace(TRAILING_SPACE, '');
}

/** The engine's splitCommand: keyword, then flags, then the rest. */
export function toInstruction(line: string, startLine: number, endLine: number): Instruction {
  const original = trimSpace(line);
  const [keyword = '', args] = splitOnce(original);
  const { flags, rest } = args === undefined ? { flags: [], rest: '' } : extractFlags(args);
  return { startLine, endLine, keyword: keyword.toLowerCase(), original, flags, rest: trimSpace(rest) };
}

function splitOnce(s: string): [string, string?] {
  const match = WORD_SEPARATOR.exec(s);
  return match ? [s.slice(0, match.index), s.slice(match.index + match[0].length)] : [s];
}

/**
 * The engine's extractBuilderFlags, byte for byte (it walks the UTF-8 bytes and asks unicode.IsSpace of
 * each byte taken as a code point, so 0x85 and 0xA0 inside a multi-byte character count as spaces).
 * Returns the `--flag` words with quotes and backslashes processed, and the rest of the line untouched.
 */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const bytes = Buffer.from(line, 'utf8');
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word: number[] = [];
  let quote = 0;
  let blankOk = false;
  const text = (b: number[]) => Buffer.from(b).toString('utf8');
  for (let pos = 0; pos <= bytes.length; pos++) {
    const atEnd = pos === bytes.length;
    let ch = atEnd ? (bytes[pos - 1] ?? 0) : bytes[pos]!;
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isByteSpace(ch)) continue;
      if (ch !== 0x2d || pos + 1 === bytes.length || bytes[pos + 1] !== 0x2d) return { flags, rest: bytes.subarray(pos).toString('utf8') };
      phase = 'word';
    }
    if (atEnd) {
      if (text(word) !== '--' && (blankOk || word.length > 0)) flags.push(text(word));
      break;
    }
    if (phase === 'word') {
      if (isByteSpace(ch)) {
        phase = 'spaces';
        if (text(word) === '--') return { flags, rest: bytes.subarray(pos).toString('utf8') };
        if (blankOk || word.length > 0) flags.push(text(word));
        word = [];
        blankOk = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOk = true;
        phase = 'quote';
        continue;
      }
      if (ch === 0x5c) {
        if (pos + 1 === bytes.length) continue;
        pos += 1;
        ch = bytes[pos]!;
      }
      word.push(ch);
      continue;
    }
    // in a quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === 0x5c) {
      if (pos + 1 === bytes.length) {
        phase = 'word';
        continue;
      }
      pos += 1;
      ch = bytes[pos]!;
    }
    word.push(ch);
  }
  return { flags, rest: '' };
}

function isByteSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0x85 || b === 0xa0;
}

/** ADD/COPY/RUN-style arguments: a JSON array of strings, or else words split on whitespace. */
export function jsonOrWords(rest: string): { json: boolean; words: string[] } {
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (Array.isArray(parsed) && parsed.every((v) => typeof v === 'string')) return { json: true, words: parsed };
    } catch {
      // not JSON: the engine reads it as words too
    }
  }
  return { json: false, words: rest === '' ? [] : rest.split(WORD_SEPARATOR) };
}
