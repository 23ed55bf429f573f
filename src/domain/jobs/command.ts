// A job's command is an argv list. A command given as one string is split the way a POSIX shell
// splits words (quotes and backslashes), with no expansion of any kind: it runs through a shell only
// when the user writes one, e.g. `sh -c "echo $HOME"`.
import { DomainError } from '../errors.ts';

const MAX_ARGS = 1000;
const MAX_TOTAL_LENGTH = 128 * 1024;

export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1]!)) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new DomainError('INVALID_INPUT', 'The command ends with a lone backslash.', 'command');
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new DomainError('INVALID_INPUT', `The command has an unclosed ${quote} quote.`, 'command');
  if (inWord) words.push(word);
  return words;
}

/** The argv to run: given as a list, or as one line split like a shell would. */
export function checkCommand(argv: string[] | null | undefined, line: string | null | undefined): string[] {
  if (argv && line != null) throw new DomainError('INVALID_INPUT', 'Give the command as a list or as one line, not both.', 'command');
  const command = argv ?? splitCommandLine(line ?? '');
  if (command.length === 0 || command[0] === '') throw new DomainError('INVALID_INPUT', 'The command is empty.', 'command');
  if (command.length > MAX_ARGS || command.reduce((n, a) => n + a.length, 0) > MAX_TOTAL_LENGTH) {
    throw new DomainError('INVALID_INPUT', 'The command is too long.', 'command');
  }
  if (command.some((a) => a.includes('\0'))) throw new DomainError('INVALID_INPUT', 'The command holds a NUL character.', 'command');
  return command;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV_BYTES = 64 * 1024;

export function checkEnv(pairs: { key: string; value: string }[]): Record<string, string> {
  const env = new Map<string, string>();
  let size = 0;
  for (const { key, value } of pairs) {
    if (!ENV_NAME.test(key) || key.length > 256) throw new DomainError('INVALID_INPUT', `"${key.slice(0, 100)}" is not a valid environment variable name.`, 'env');
    if (env.has(key)) throw new DomainError('INVALID_INPUT', `"${key}" is set twice.`, 'env');
    if (value.includes('\0')) throw new DomainError('INVALID_INPUT', `The value of ${key} holds a NUL character.`, 'env');
    size += key.length + value.length + 2;
    env.set(key, value);
  }
  if (size > MAX_ENV_BYTES) throw new DomainError('INVALID_INPUT', `The environment is larger than ${MAX_ENV_BYTES} bytes.`, 'env');
  return Object.fromEntries(env);
}

/** An attachment lands at /inbox/<name>: a plain file name, nothing that could leave /inbox. */
export function checkAttachmentName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name) || name.length > 255) {
    throw new DomainError('INVALID_INPUT', `"${name.slice(0, 100)}" is not a valid attachment name: no path separators, "." or "..".`, 'attachments');
  }
  return name;
}
