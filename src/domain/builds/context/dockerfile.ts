// Dockerfile lint: the rules a user's Dockerfile must pass before any build is queued. It reads the file
// the way Docker's parser does (parser directives, the escape character, line continuations, comments,
// case-insensitive instructions) and refuses what would let a build reach past its own context and images.
import { DomainError } from '../../errors.ts';
import { quote } from './paths.ts';

export interface Namespaces {
  /** Prefix of every image the service tags, e.g. 'dockyard'. */
  serviceNamespace: string;
  /** The caller's own prefix inside it, e.g. 'dockyard/<userId>'. */
  ownNamespace: string;
}

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

interface LintState {
  namespaces: Namespaces;
  /** Names of the stages seen so far (lower case), which FROM and COPY --from may refer to. */
  stages: Set<string>;
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$/;
const SYNTAX_DIRECTIVE = /^#\s*syntax\s*=/i;
/** A local image ID, full or short, which bypasses names (and so the namespace rule). */
const IMAGE_ID = /^(sha256:)?[a-f0-9]{12,64}$/i;

function refuse(message: string): DomainError {
  return new DomainError('INVALID_DOCKERFILE', message, 'dockerfile');
}

/** Throws INVALID_DOCKERFILE when the Dockerfile breaks one of the rules; returns when it is acceptable. */
export function lintDockerfile(text: string, namespaces: Namespaces): void {
  const instructions = parseInstructions(text);
  if (instructions.length === 0) throw refuse('The Dockerfile is empty.');
  const state: LintState = { namespaces: normaliseNamespaces(namespaces), stages: new Set() };
  for (const instruction of instructions) checkInstruction(instruction, state);
}

function normaliseNamespaces(ns: Namespaces): Namespaces {
  const clean = (s: string) => s.toLowerCase().replace(/\/+$/, '');
  return { serviceNamespace: clean(ns.serviceNamespace), ownNamespace: clean(ns.ownNamespace) };
}

// ---------------------------------------------------------------------------------------------------
// Parsing

/** Splits the text into logical instructions: directives read, comments dropped, continuations joined. */
function parseInstructions(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  const continuation = new RegExp(`${escapeRegExp(readDirectives(lines))}[ \\t]*$`);
  const instructions: Instruction[] = [];
  let start = 0;
  let joined = '';
  for (const [index, raw] of lines.entries()) {
    const trimmed = raw.trim();
    if (SYNTAX_DIRECTIVE.test(trimmed)) throw refuse(`Line ${index + 1}: the "# syntax=" parser directive is not allowed.`);
    // Comments and empty lines vanish, also in the middle of a continuation.
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (joined === '') start = index + 1;
    if (continuation.test(raw)) {
      joined += raw.replace(continuation, ''); // joined as they are, like Docker: R\ + UN is RUN
      continue;
    }
    pushInstruction(instructions, start, joined + raw);
    joined = '';
  }
  pushInstruction(instructions, start, joined);
  return instructions;
}

function pushInstruction(instructions: Instruction[], line: number, text: string): void {
  const instruction = toInstruction(line, text);
  if (instruction) instructions.push(instruction);
}

/** Reads the parser directives at the top of the file; returns the escape character they set. */
function readDirectives(lines: string[]): string {
  let escape = '\\';
  for (const raw of lines) {
    const match = DIRECTIVE.exec(raw.trim());
    if (!match) break;
    const [, name = '', value = ''] = match;
    if (name.toLowerCase() === 'syntax') throw refuse('The "# syntax=" parser directive is not allowed.');
    if (name.toLowerCase() === 'escape') {
      if (value !== '\\' && value !== '`') throw refuse(`Invalid escape directive ${quote(value)}: use \\ or \`.`);
      escape = value;
    }
  }
  return escape;
}

function toInstruction(line: number, text: string): Instruction | null {
  const match = /^\s*(\S+)\s*([\s\S]*)$/.exec(text);
  if (!match) return null;
  return { line, keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim() };
}

/** Splits arguments on unquoted whitespace, keeping quotes (they are stripped where values are compared). */
function splitWords(args: string): string[] {
  const words: string[] = [];
  let current = '';
  let quoteChar: string | null = null;
  for (const ch of args) {
    if (quoteChar) {
      if (ch === quoteChar) quoteChar = null;
      current += ch;
    } else if (ch === '"' || ch === "'") {
      quoteChar = ch;
      current += ch;
    } else if (/\s/.test(ch)) {
      if (current) words.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current) words.push(current);
  return words;
}

/** A word as Docker would read it, near enough for the checks: quotes and escape characters removed. */
function unquote(word: string): string {
  return word.replace(/["'\\`]/g, '');
}

/** Leading `--flag` words, and the words after them. */
function splitFlags(args: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let rest = args.trimStart();
  for (;;) {
    const match = /^(--\S+)\s*/.exec(rest);
    if (!match) return { flags, rest };
    flags.push(match[1] ?? '');
    rest = rest.slice(match[0].length);
  }
}

/** The arguments of ADD/COPY-style instructions, in JSON form or shell form. */
function pathArguments(rest: string): string[] {
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (Array.isArray(parsed) && parsed.every((v) => typeof v === 'string')) return parsed;
    } catch {
      // not JSON: Docker reads it as shell form too
    }
  }
  return splitWords(rest).map(unquote);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------------
// Rules

function checkInstruction(instruction: Instruction, state: LintState): void {
  switch (instruction.keyword) {
    case 'FROM':
      return checkFrom(instruction, state);
    case 'ADD':
      return checkAdd(instruction);
    case 'COPY':
      return checkCopy(instruction, state);
    case 'RUN':
      return checkRun(instruction);
    case 'ONBUILD':
      return checkOnbuild(instruction, state);
    default:
      return;
  }
}

function checkFrom(instruction: Instruction, state: LintState): void {
  const words = splitWords(splitFlags(instruction.args).rest);
  const image = unquote(words[0] ?? '');
  if (!image) throw refuse(`Line ${instruction.line}: FROM needs an image.`);
  checkImage(image, `FROM on line ${instruction.line}`, state);
  if (words.length >= 3 && (words[1] ?? '').toUpperCase() === 'AS') state.stages.add(unquote(words[2] ?? '').toLowerCase());
}

function checkCopy(instruction: Instruction, state: LintState): void {
  for (const flag of splitFlags(instruction.args).flags) {
    const match = /^--from=(.*)$/i.exec(flag);
    if (!match) continue;
    const source = unquote(match[1] ?? '');
    if (/^\d+$/.test(source)) continue; // an earlier stage by index
    checkImage(source, `COPY --from on line ${instruction.line}`, state);
  }
}

/**
 * An image reference must not name another tenant's images. Variables are allowed only in the tag or
 * digest, since build arguments could otherwise turn the name into anything.
 */
function checkImage(reference: string, where: string, state: LintState): void {
  if (state.stages.has(reference.toLowerCase())) return;
  const name = imageName(reference);
  if (name.includes('$')) throw refuse(`${where}: the image name may not use variables (only its tag may).`);
  if (IMAGE_ID.test(reference)) throw refuse(`${where}: image IDs are not allowed (they could name any local image); use the image's name.`);
  // Whatever registry it names (docker.io, or a registry this engine pushed to and still has a tag of):
  // what matters is the repository path within it.
  const normal = withoutRegistry(name.toLowerCase());
  const { serviceNamespace, ownNamespace } = state.namespaces;
  if (normal.startsWith(`${serviceNamespace}/`) && !normal.startsWith(`${ownNamespace}/`)) {
    throw refuse(`${where}: ${quote(reference)} is another account's image; only your own ${ownNamespace}/… images may be used.`);
  }
}

/** `host[:port]/path` → `path`: a first component with a dot or a colon, or `localhost`, is a registry. */
function withoutRegistry(name: string): string {
  const [first, ...rest] = name.split('/');
  return rest.length > 0 && (first === 'localhost' || /[.:]/.test(first ?? '')) ? rest.join('/') : name;
}

/** The repository part of an image reference: without its digest or tag. */
function imageName(reference: string): string {
  const withoutDigest = reference.split('@')[0] ?? '';
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

function checkAdd(instruction: Instruction): void {
  const { rest } = splitFlags(instruction.args);
  if (rest.startsWith('<<')) return; // heredoc: inline content, nothing remote
  for (const source of pathArguments(rest)) {
    if (isRemoteSource(source)) {
      throw refuse(`Line ${instruction.line}: ADD from a remote source (${quote(source)}) is not allowed; put the file in the build context.`);
    }
    if (source.includes('$')) {
      throw refuse(`Line ${instruction.line}: ADD paths may not use variables (${quote(source)}); write the path out.`);
    }
  }
}

/** URLs of any scheme and the git forms Docker recognises (git@…, github.com/…). */
function isRemoteSource(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^git@/i.test(source) || /^github\.com\//i.test(source);
}

function checkRun(instruction: Instruction): void {
  const [flag] = splitFlags(instruction.args).flags;
  if (flag === undefined) return;
  const name = flag.split('=')[0] ?? flag;
  throw refuse(`Line ${instruction.line}: RUN ${name} is not allowed (no RUN flags such as --mount, --network or --security).`);
}

/** ONBUILD carries an instruction for later builds: it must pass the same rules. */
function checkOnbuild(instruction: Instruction, state: LintState): void {
  const inner = toInstruction(instruction.line, instruction.args);
  if (!inner) throw refuse(`Line ${instruction.line}: ONBUILD needs an instruction.`);
  if (inner.keyword === 'FROM' || inner.keyword === 'ONBUILD') {
    throw refuse(`Line ${instruction.line}: ONBUILD ${inner.keyword} is not allowed.`);
  }
  checkInstruction(inner, state);
}
