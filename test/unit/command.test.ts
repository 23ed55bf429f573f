import { describe, expect, it } from 'vitest';
import { checkAttachmentName, checkCommand, checkEnv, splitCommandLine } from '../../src/domain/jobs/command.ts';

describe('splitCommandLine', () => {
  it.each([
    ['echo hello world', ['echo', 'hello', 'world']],
    ['  echo   spaced  ', ['echo', 'spaced']],
    [`sh -c 'echo $HOME && ls'`, ['sh', '-c', 'echo $HOME && ls']],
    [`printf "a \\"quoted\\" \\\\ word"`, ['printf', 'a "quoted" \\ word']],
    [`echo a\\ b`, ['echo', 'a b']],
    [`echo '' ""`, ['echo', '', '']],
    [`echo $HOME *.txt ; rm`, ['echo', '$HOME', '*.txt', ';', 'rm']],
    [`cat "/inbox/my file.txt"`, ['cat', '/inbox/my file.txt']],
  ])('%s', (line, argv) => {
    expect(splitCommandLine(line)).toEqual(argv);
  });

  it.each([`echo 'open`, `echo "open`, 'echo \\'])('refuses %s', (line) => {
    expect(() => splitCommandLine(line)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', field: 'command' }));
  });
});

describe('checkCommand', () => {
  it('takes a list or a line, not both, and never an empty command', () => {
    expect(checkCommand(['ls', '-l'], null)).toEqual(['ls', '-l']);
    expect(checkCommand(null, 'ls -l')).toEqual(['ls', '-l']);
    for (const [argv, line] of [[[], null], [null, '   '], [[''], null], [['a'], 'b']] as const) {
      expect(() => checkCommand(argv as string[] | null, line)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
  });
});

describe('checkEnv and checkAttachmentName', () => {
  it('accepts valid names and refuses invalid ones', () => {
    expect(checkEnv([{ key: 'A_1', value: 'x=y' }])).toEqual({ A_1: 'x=y' });
    for (const key of ['1A', 'A-B', 'A B', '', 'A=B']) expect(() => checkEnv([{ key, value: '' }])).toThrow();
    expect(checkAttachmentName('data.csv')).toBe('data.csv');
    for (const name of ['', '.', '..', 'a/b', '../x', 'a\\b']) expect(() => checkAttachmentName(name)).toThrow();
  });
});
