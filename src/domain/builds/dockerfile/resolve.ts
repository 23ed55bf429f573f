// Turns a user's Dockerfile into the one the engine builds. Every image the file builds on (FROM,
// COPY --from) is resolved by the service to a full `sha256:` id from what the user may use; stages get
// names the service makes (`stage-0`, `stage-1`, …). The engine is handed a file written by the service:
// one instruction per line, at the line where the user's instruction started (so the engine's messages
// name the user's lines), no comments, no continuations, and only the escape directive. The engine can
// read such a file in one way only, so no name, tag, short id or registry reference the user typed
// ever reaches it.
import { DomainError } from '../../errors.ts';
import { jsonOrWords, parseDockerfile, readDockerfile, refuse, WORD_SEPARATOR, type Instruction, type ParsedDockerfile } from './parse.ts';
import { parseReference, type ImageReference } from './reference.ts';
import { expandWord, WordError } from './words.ts';

/** Thrown by a resolver for an image the user may name but not build on (e.g. it has ONBUILD triggers). */
export class ImageRefused extends Error {
  override name = 'ImageRefused';
}

export interface ImageResolver {
  /**
   * The full id (`sha256:…`) of an image this user may build on, or null (missing and not allowed read
   * alike); throws ImageRefused for an image that may be named but not used.
   */
  resolve(reference: ImageReference): Promise<string | null>;
  /** What may be named, for the refusal: e.g. `your images (dockyard/alice/<name>[:tag]) or busybox:latest`. */
  allowed(): string;
}

export interface ResolveOptions {
  images: ImageResolver;
  buildArgs: Readonly<Record<string, string>>;
  /** The user's name of the stage to build, if any. */
  target: string | null;
}

export interface ResolvedDockerfile {
  /** The Dockerfile the engine builds. */
  text: string;
  /** The engine's name of the target stage. */
  target: string | null;
  /** What each image reference was resolved to, in order: for the build log. */
  bases: { line: number; reference: string; id: string }[];
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
/** Instructions the engine's builder knows; other ASCII words are passed on for the engine to refuse. */
const INSTRUCTION_WORD = /^[a-z]+$/;
/** The instructions whose arguments may be a JSON array. */
const JSON_FORMS = new Set(['add', 'copy', 'run', 'cmd', 'entrypoint', 'volume', 'shell', 'healthcheck', 'onbuild']);
/** Flag values the service writes back as they are: nothing that quotes, escapes or splits. */
const PLAIN_FLAG_VALUE = /^[A-Za-z0-9_.:${}-]+$/;
const HEREDOC = /(^|[\s])<<-?[\s]*["']?[A-Za-z0-9_]/;
const ENGINE_LINE_MAX = 64 * 1024 - 1;

export async function resolveDockerfile(text: string, options: ResolveOptions): Promise<ResolvedDockerfile> {
  const bom = text.indexOf('\uFEFF', 1);
  if (bom > 0) throw refuse(lineOf(text, bom), 'a byte-order mark (U+FEFF) is only allowed at the very start of the file.');
  const parsed = parseDockerfile(text);
  if (parsed.instructions.length === 0) throw refuse(null, 'The Dockerfile is empty.');
  const resolution = new Resolution(parsed, options);
  const lines: string[] = [];
  for (const instruction of parsed.instructions) {
    const written = await resolution.rewrite(instruction);
    if (Buffer.byteLength(written) > ENGINE_LINE_MAX) throw refuse(instruction.startLine, 'the instruction is longer than the engine reads (64 KiB).');
    if (written.endsWith(parsed.escape)) throw refuse(instruction.startLine, 'the instruction ends with an escape character followed by unusual white space (the engine would join it with the next line).');
    while (lines.length < instruction.startLine - 1) lines.push('');
    lines.push(written);
  }
  if (parsed.escape === '`') lines[0] = '# escape=`';
  if (resolution.stageCount === 0) throw refuse(null, 'The Dockerfile has no FROM instruction.');
  const written = `${lines.join('\n')}\n`;
  checkReadsBack(written, lines, parsed.escape);
  return { text: written, target: resolution.target(options.target), bases: resolution.bases };
}

/**
 * The written file must read back, by the engine's rules, as exactly the lines written: each one
 * instruction on its own line, nothing joined, nothing hidden. (By construction it does; this makes sure
 * no reading of the user's text the service did not foresee can turn into another instruction.)
 */
function checkReadsBack(written: string, lines: string[], escape: string): void {
  const reread = readDockerfile(written);
  const expected = lines.flatMap((line, i) => (line === '' || (i === 0 && line.startsWith('#')) ? [] : [{ line: i + 1, original: line }]));
  const same =
    reread.escape === escape &&
    reread.instructions.length === expected.length &&
    reread.instructions.every((instruction, i) => instruction.startLine === expected[i]!.line && instruction.endLine === expected[i]!.line && instruction.original === expected[i]!.original);
  if (!same) {
    const first = reread.instructions.find((instruction, i) => instruction.original !== expected[i]?.original || instruction.endLine !== instruction.startLine);
    throw refuse(first?.startLine ?? null, 'this instruction cannot be handed to the engine unambiguously (unusual white space or characters); write it plainly.');
  }
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

class Resolution {
  readonly bases: ResolvedDockerfile['bases'] = [];
  /** The user's stage names (lower case) → the service's. */
  readonly #stages = new Map<string, string>();
  /** ARGs declared before the first FROM, as the build sees them: their defaults or the build's values. */
  readonly #metaArgs = new Map<string, string>();
  stageCount = 0;
  /** The user's name of the stage being read: usable once the next stage starts. */
  #pendingStage: string | null = null;
  readonly #parsed: ParsedDockerfile;
  readonly #options: ResolveOptions;

  constructor(parsed: ParsedDockerfile, options: ResolveOptions) {
    this.#parsed = parsed;
    this.#options = options;
  }

  async rewrite(instruction: Instruction): Promise<string> {
    if (!INSTRUCTION_WORD.test(instruction.keyword)) {
      throw refuse(instruction.startLine, `"${instruction.keyword.slice(0, 40)}" is not an instruction (instructions are plain ASCII words such as RUN).`);
    }
    if (JSON_FORMS.has(instruction.keyword)) checkJsonForm(instruction);
    switch (instruction.keyword) {
      case 'arg':
        if (this.stageCount === 0) this.#declareMetaArgs(instruction);
        return instruction.original;
      case 'from':
        return this.#from(instruction);
      case 'copy':
        return this.#copy(instruction);
      case 'add':
        checkAdd(instruction);
        return instruction.original;
      case 'run':
        checkRun(instruction);
        return instruction.original;
      case 'onbuild':
        // A trigger runs in a later build, read anew there: images with triggers are not built on (see
        // the resolver), so a trigger could only make an image unusable.
        throw refuse(instruction.startLine, 'ONBUILD is not supported: images with ONBUILD triggers cannot be built on in Dockyard.');
      default:
        // Everything else names no image. An unknown instruction is passed on: the engine's own message
        // (at the user's line) tells the user what is wrong.
        return instruction.original;
    }
  }

  target(name: string | null): string | null {
    if (name === null) return null;
    if (this.#pendingStage !== null) this.#stages.set(this.#pendingStage, stageName(this.stageCount - 1));
    this.#pendingStage = null;
    const stage = this.#stages.get(name.toLowerCase());
    if (!stage) throw new DomainError('INVALID_INPUT', `The Dockerfile has no stage named "${name.slice(0, 140)}" (FROM … AS ${name.slice(0, 140)}).`, 'target');
    return stage;
  }

  #declareMetaArgs(instruction: Instruction): void {
    for (const word of instruction.rest.split(WORD_SEPARATOR).filter(Boolean)) {
      const eq = word.indexOf('=');
      const name = eq < 0 ? word : word.slice(0, eq);
      const fallback = eq < 0 ? '' : this.#expand(word.slice(eq + 1), instruction.startLine);
      this.#metaArgs.set(name, this.#options.buildArgs[name] ?? fallback);
    }
  }

  async #from(instruction: Instruction): Promise<string> {
    const line = instruction.startLine;
    if (this.#pendingStage !== null) this.#stages.set(this.#pendingStage, stageName(this.stageCount - 1));
    this.#pendingStage = null;
    if (instruction.flags.length > 0) throw refuse(line, `FROM ${instruction.flags[0]!.split('=')[0]} is not supported: write FROM <image> [AS <name>].`);
    const words = instruction.rest.split(WORD_SEPARATOR).filter(Boolean);
    let userStage: string | null = null;
    if (words.length === 3 && words[1]!.toLowerCase() === 'as') {
      userStage = words[2]!.toLowerCase();
      if (!STAGE_NAME.test(userStage)) throw refuse(line, `"${words[2]}" is not a valid stage name (a letter, then letters, digits, -, _ or .).`);
    } else if (words.length !== 1) {
      throw refuse(line, 'FROM takes an image, optionally followed by AS <name>.');
    }
    const base = await this.#source(this.#expand(words[0]!, line), 'FROM', line);
    const stage = stageName(this.stageCount);
    this.stageCount += 1;
    // Known from the next stage on: a stage cannot build on, or copy from, itself.
    this.#pendingStage = userStage;
    return `FROM ${base} AS ${stage}`;
  }

  async #copy(instruction: Instruction): Promise<string> {
    const line = instruction.startLine;
    checkNoHeredoc(instruction);
    const flags: string[] = [];
    for (const flag of instruction.flags) {
      const [name = '', value] = splitFlag(flag);
      if (name === 'from') {
        if (value === undefined || value === '') throw refuse(line, 'COPY --from needs a stage or an image.');
        if (value.includes('$')) throw refuse(line, 'COPY --from may not use variables: name the stage or image.');
        flags.push(`--from=${await this.#copySource(value, line)}`);
      } else {
        flags.push(plainFlag('COPY', ['chown', 'chmod'], name, value, line));
      }
    }
    checkPathsStart(instruction);
    return ['COPY', ...flags, instruction.rest].join(' ');
  }

  async #copySource(value: string, line: number): Promise<string> {
    if (/^\d+$/.test(value)) {
      const index = Number(value);
      if (index >= this.stageCount - 1) throw refuse(line, `COPY --from=${value}: there is no earlier stage ${value}.`);
      return stageName(index);
    }
    return this.#source(value, 'COPY --from', line);
  }

  /** An earlier stage, `scratch`, or an image the user may use: what the engine is given instead of the user's words. */
  async #source(text: string, where: string, line: number): Promise<string> {
    const stage = this.#stages.get(text.toLowerCase());
    if (stage) return stage;
    if (text === 'scratch') return 'scratch';
    const reference = parseReference(text);
    if (!reference) throw refuse(line, `${where} "${text.slice(0, 200)}" is not a valid image reference.`);
    if (reference.digest) throw refuse(line, `${where} "${text.slice(0, 200)}": name the image by its tag, not a digest.`);
    let id: string | null;
    try {
      id = await this.#options.images.resolve(reference);
    } catch (error) {
      if (error instanceof ImageRefused) throw refuse(line, `${where} "${text.slice(0, 200)}": ${error.message}`);
      throw error;
    }
    if (!id) throw refuse(line, `${where} "${text.slice(0, 200)}" is not an image you can build on: use ${this.#options.images.allowed()}.`);
    this.bases.push({ line, reference: text, id });
    // The bare 64-hex id: the engine reads it as an id only, and never tries to pull it if it went missing.
    return id.replace(/^sha256:/, '');
  }

  #expand(word: string, line: number): string {
    try {
      return expandWord(word, this.#parsed.escape, this.#metaArgs);
    } catch (error) {
      if (error instanceof WordError) throw refuse(line, `${error.message}.`);
      throw error;
    }
  }
}

function splitFlag(flag: string): [string, string | undefined] {
  const eq = flag.indexOf('=');
  return eq < 0 ? [flag.slice(2).toLowerCase(), undefined] : [flag.slice(2, eq).toLowerCase(), flag.slice(eq + 1)];
}

/** A flag the service allows, written back as `--name=value` (only plain values, which read back the same). */
function plainFlag(instruction: string, allowed: string[], name: string, value: string | undefined, line: number): string {
  if (!allowed.includes(name)) throw refuse(line, `${instruction} --${name} is not allowed (${allowed.map((a) => `--${a}`).join(', ')} are).`);
  if (value === undefined || !PLAIN_FLAG_VALUE.test(value)) throw refuse(line, `${instruction} --${name} needs a plain value (letters, digits, and . _ : - $ { }).`);
  return `--${name}=${value}`;
}

function checkNoHeredoc(instruction: Instruction): void {
  if (HEREDOC.test(instruction.rest)) {
    throw refuse(instruction.startLine, `${instruction.keyword.toUpperCase()} with a heredoc (<<) is not supported by this engine's builder: put the content in a file of the build context.`);
  }
}

function checkAdd(instruction: Instruction): void {
  const line = instruction.startLine;
  checkNoHeredoc(instruction);
  for (const flag of instruction.flags) {
    const [name = '', value] = splitFlag(flag);
    plainFlag('ADD', ['chown', 'chmod'], name, value, line);
  }
  checkPathsStart(instruction);
  const { words } = jsonOrWords(instruction.rest);
  for (const source of words.slice(0, -1)) {
    const plain = source.replace(/["'\\`]/g, '');
    if (isRemoteSource(plain)) throw refuse(line, `ADD from a remote source ("${source.slice(0, 200)}") is not allowed: put the file in the build context.`);
    if (source.includes('$')) throw refuse(line, `ADD paths may not use variables ("${source.slice(0, 200)}"): write the path out.`);
  }
}

/** URLs of any scheme and the git forms Docker has recognised (git@…, github.com/…). */
function isRemoteSource(source: string): boolean {
  return source.includes('://') || /^git@/i.test(source) || /^github\.com\//i.test(source);
}

function checkRun(instruction: Instruction): void {
  const [flag] = instruction.flags;
  if (flag !== undefined) {
    throw refuse(instruction.startLine, `RUN ${flag.split('=')[0]} is not allowed (no RUN flags such as --mount, --network or --security).`);
  }
  checkNoHeredoc(instruction);
}

/** The service's name of stage `index`: a valid stage name that is not a valid image reference (so never looked up as one). */
function stageName(index: number): string {
  return `stage-${index}.`;
}

/** COPY/ADD arguments after the flags may not start with `-`: written back, they would read as flags. */
function checkPathsStart(instruction: Instruction): void {
  if (instruction.rest.startsWith('-')) {
    throw refuse(instruction.startLine, `${instruction.keyword.toUpperCase()}: a path may not start with "-" (and "--" does not end the flags here).`);
  }
}

/**
 * The engine reads the first JSON value of a `[`-led argument list and ignores what follows it; a list
 * that is JSON only in part would be read differently by different readers, so it is refused.
 */
function checkJsonForm(instruction: Instruction): void {
  const { rest } = instruction;
  if (!rest.startsWith('[')) return;
  try {
    JSON.parse(rest);
    return;
  } catch {
    // not JSON as a whole: fine if no part of it is either (then it is shell form for everyone)
  }
  let tries = 0;
  for (let end = rest.indexOf(']'); end >= 0; end = rest.indexOf(']', end + 1)) {
    if (++tries > 200) break;
    try {
      JSON.parse(rest.slice(0, end + 1));
    } catch {
      continue;
    }
    throw refuse(instruction.startLine, `${instruction.keyword.toUpperCase()}: a JSON array must be the whole argument list (there is more text after it).`);
  }
  if (tries > 200) throw refuse(instruction.startLine, `${instruction.keyword.toUpperCase()}: the argument list is too unusual to read safely.`);
}
