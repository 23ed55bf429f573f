// The shared string check: what it refuses, how it names the field, what it leaves alone.
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.ts';
import { checkInput, checkString, formatPath, MAX_DEPTH, MAX_DOCKERFILE_LENGTH, MAX_STRING_LENGTH } from '../../src/http/input-guard.ts';

function refusal(run: () => void): { message: string; field: string | undefined } {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('INVALID_INPUT');
    return { message: (error as DomainError).message, field: (error as DomainError).field };
  }
  throw new Error('not refused');
}

describe('input guard', () => {
  it('refuses a NUL, a lone surrogate of either half, and an over-long string, naming the path', () => {
    expect(refusal(() => checkInput({ input: { name: 'a\0' } }, []))).toEqual({ message: 'input.name holds a NUL character.', field: 'input.name' });
    expect(refusal(() => checkInput({ env: [{ value: 'ok' }, { value: '\ud800x' }] }, ['input'])).field).toBe('input.env[1].value');
    expect(refusal(() => checkString('x\udc00', ['name'])).message).toMatch(/lone UTF-16 surrogate/);
    expect(refusal(() => checkString('x'.repeat(MAX_STRING_LENGTH + 1), ['name'])).message).toBe(`name is longer than ${MAX_STRING_LENGTH} characters.`);
  });

  it('takes surrogate pairs, control characters other than NUL, and a Dockerfile up to its own cap', () => {
    checkInput({ name: 'emoji 🐳', text: 'tab\tand\nnewline', list: [1, true, null] }, []);
    checkString('x'.repeat(MAX_DOCKERFILE_LENGTH), ['input', 'dockerfile']);
    checkString('x'.repeat(MAX_DOCKERFILE_LENGTH), ['Dockerfile']);
    expect(refusal(() => checkString('x'.repeat(MAX_DOCKERFILE_LENGTH + 1), ['dockerfile'])).field).toBe('dockerfile');
  });

  it('checks object keys, and escapes them in the field it names', () => {
    expect(refusal(() => checkInput({ ['a\0b']: 'x' }, ['env']))).toEqual({ message: 'env.a\\u0000b has a name that holds a NUL character.', field: 'env.a\\u0000b' });
    expect(formatPath(['k'.repeat(100)])).toBe(`${'k'.repeat(64)}…`);
    expect(formatPath([])).toBe('the input');
  });

  it('leaves objects that are not plain data alone (an upload); refuses nesting deeper than MAX_DEPTH without recursing', () => {
    class Upload {
      name = 'a\0';
    }
    checkInput({ files: [new Upload()] }, []);
    const nest = (levels: number, inner: unknown) => {
      let value = inner;
      for (let i = 0; i < levels; i++) value = [value];
      return value;
    };
    checkInput(nest(MAX_DEPTH, 'fine'), ['v']);
    expect(refusal(() => checkInput(nest(MAX_DEPTH - 1, 'a\0'), ['v'])).field).toBe(`v${'[0]'.repeat(MAX_DEPTH - 1)}`);
    expect(refusal(() => checkInput(nest(200_000, 'fine'), ['v']))).toEqual({
      message: `v${'[0]'.repeat(MAX_DEPTH)} is nested more than ${MAX_DEPTH} levels deep.`,
      field: `v${'[0]'.repeat(MAX_DEPTH)}`,
    });
    expect(formatPath(Array.from({ length: 1000 }, () => 0)).length).toBeLessThanOrEqual(201);
  });
});
