// One Dockerfile word as the engine expands it (its shell lexer, the part image references use):
// quotes removed, the escape character honoured, `$NAME`, `${NAME}`, `${NAME:-default}` and
// `${NAME:+alternative}` replaced from the given variables. Anything fancier is refused, not guessed.
import type { EscapeChar } from './parse.ts';

export class WordError extends Error {
  override name = 'WordError';
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

export function expandWord(word: string, escape: EscapeChar, variables: ReadonlyMap<string, string>): string {
  const chars = [...word];
  let out = '';
  let i = 0;
  const dollar = (): string => {
    // chars[i] is '$'
    const next = chars[i + 1];
    if (next === '{') {
      const close = chars.indexOf('}', i + 2);
      if (close < 0) throw new WordError('missing "}" after "${"');
      const body = chars.slice(i + 2, close).join('');
      i = close + 1;
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+)(.*))?$/s.exec(body);
      if (!match) throw new WordError(`"\${${body}}" is not a supported substitution (use $NAME, \${NAME}, \${NAME:-default} or \${NAME:+value})`);
      const [, name = '', operator, operand = ''] = match;
      const value = variables.get(name) ?? '';
      if (operator === ':-') return value === '' ? expandWord(operand, escape, variables) : value;
      if (operator === ':+') return value === '' ? '' : expandWord(operand, escape, variables);
      return value;
    }
    if (next !== undefined && NAME_START.test(next)) {
      let end = i + 1;
      while (end < chars.length && NAME_CHAR.test(chars[end]!)) end += 1;
      const name = chars.slice(i + 1, end).join('');
      i = end;
      return variables.get(name) ?? '';
    }
    i += 1;
    return '$';
  };
  while (i < chars.length) {
    const ch = chars[i]!;
    if (ch === escape) {
      i += 1;
      if (i < chars.length) out += chars[i++];
    } else if (ch === "'") {
      const close = chars.indexOf("'", i + 1);
      if (close < 0) throw new WordError('a single quote is not closed');
      out += chars.slice(i + 1, close).join('');
      i = close + 1;
    } else if (ch === '"') {
      i += 1;
      for (;;) {
        if (i >= chars.length) throw new WordError('a double quote is not closed');
        const c = chars[i]!;
        if (c === '"') {
          i += 1;
          break;
        }
        if (c === '$') {
          out += dollar();
        } else if (c === escape && (chars[i + 1] === '"' || chars[i + 1] === '$' || chars[i + 1] === escape)) {
          out += chars[i + 1];
          i += 2;
        } else {
          out += c;
          i += 1;
        }
      }
    } else if (ch === '$') {
      out += dollar();
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}
