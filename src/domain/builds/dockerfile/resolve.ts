// Turns a user's Dockerfile into the one the engine builds. Every image the file builds on (FROM,
// COPY --from) is resolved by the service to a full `sha256:` id from what the user may use; stages get
// names the service makes (`stage-0`, `stage-1`, …). The engine is handed a file written by the service:
// one instruction per line, at the line where the user's instruction started (so the engine's messages
// name the user's lines), no comments, no continuations, and only the escape directive. The engine can
// read such a file in one way only, so no name, tag, short id or registry reference the user typed
// ever reaches it.
import { DomainError } from '../../errors.ts';
import { jsonOrWords, parseDockerfile, refuse, toInstruction, WORD_SEPARATOR, type Instruction, type ParsedDockerfile } from './parse.ts';
import { parseReference, type ImageReference } from './reference.ts';
import { expandWord, WordError } from './words.ts';

export interface ImageResolver {
  /** The full id (`sha256:…`) of an image this user may build on, or null (missing and not allowed read alike). */
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
/** Flag values the service writes back as they are: nothing that quotes, escapes or splits. */
const PLAIN_FLAG_VALUE = /^[A-Za-z0-9_.:${}-]+$/;
const HEREDOC = /(^|[\s])<<-?[\s]*["']?[A-Za-z0-9_]/;
const ENGINE_LINE_MAX = 64 * 1024 - 1;

export async function resolveDockerfile(text: string, options: ResolveOptions): Promise<ResolvedDockerfile> {
  const parsed = parseDockerfile(text);
  if (parsed.instructions.length === 0) throw refuse(null, 'The Dockerfile is empty.');
  const resolution = new Resolution(parsed, options);
  const lines: string[] = [];
  for (const instruction of parsed.instructions) {
    const written = await resolution.rewrite(instruction);
    if (Buffer.byteLength(written) > ENGINE_LINE_MAX) throw refuse(instruction.startLine, 'the instruction is longer than the engine reads (64 KiB).');
    while (lines.length < instruction.startLine - 1) lines.push('');
    lines.push(written);
  }
  if (parsed.escape === '`') lines[0] = '# escape=`';
  if (resolution.stageCount === 0) throw refuse(null, 'The Dockerfile has no FROM instruction.');
  return { text: `${lines.join('\n')}\n`, target: resolution.target(options.target), bases: resolution.bases };
}

class Resolution {
  readonly bases: ResolvedDockerfile['bases'] = [];
  /** The user's stage names (lower case) → the service's. */
  readonly #stages = new Map<string, string>();
  /** ARGs declared before the first FROM, as the build sees them: their defaults or the build's values. */
  readonly #metaArgs = new Map<string, string>();
  stageCount = 0;
  readonly #parsed: ParsedDockerfile;
  readonly #options: ResolveOptions;

  constructor(parsed: ParsedDockerfile, options: ResolveOptions) {
    this.#parsed = parsed;
    this.#options = options;
  }

  async rewrite(instruction: Instruction): Promise<string> {
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
        checkOnbuild(instruction);
        return instruction.original;
      default:
        // Everything else names no image. An unknown instruction is passed on: the engine's own message
        // (at the user's line) tells the user what is wrong.
        return instruction.original;
    }
  }

  target(name: string | null): string | null {
    if (name === null) return null;
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
    const stage = `stage-${this.stageCount}`;
    this.stageCount += 1;
    if (userStage !== null) this.#stages.set(userStage, stage);
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
    return ['COPY', ...flags, instruction.rest].join(' ');
  }

  async #copySource(value: string, line: number): Promise<string> {
    if (/^\d+$/.test(value)) {
      const index = Number(value);
      if (index >= this.stageCount) throw refuse(line, `COPY --from=${value}: there is no earlier stage ${value}.`);
      return `stage-${index}`;
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
    const id = await this.#options.images.resolve(reference);
    if (!id) throw refuse(line, `${where} "${text.slice(0, 200)}" is not an image you can build on: use ${this.#options.images.allowed()}.`);
    this.bases.push({ line, reference: text, id });
    return id;
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
  // Any flag left in the rest was not read as one (after `--`): the engine treats it as a path, and so does this.
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

/** ONBUILD carries an instruction into later builds, where its names would mean something else: only plain ones. */
function checkOnbuild(instruction: Instruction): void {
  const line = instruction.startLine;
  if (instruction.flags.length > 0) throw refuse(line, 'ONBUILD takes no flags.');
  const inner = toInstruction(instruction.rest, line, instruction.endLine);
  if (inner.keyword === '') throw refuse(line, 'ONBUILD needs an instruction.');
  if (['from', 'onbuild', 'maintainer'].includes(inner.keyword)) throw refuse(line, `ONBUILD ${inner.keyword.toUpperCase()} is not allowed.`);
  if (inner.keyword === 'copy') {
    checkNoHeredoc(inner);
    if (inner.flags.some((flag) => splitFlag(flag)[0] === 'from')) throw refuse(line, 'ONBUILD COPY --from is not allowed: the later build would resolve the name.');
  }
  if (inner.keyword === 'add') checkAdd(inner);
  if (inner.keyword === 'run') checkRun(inner);
}

