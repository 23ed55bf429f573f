// The Dockerfile reader and resolver without an engine: how lines become instructions (the engine's
// rules), which images a user may name, and the file the engine is handed instead of the user's.
// test/integration/dockerfile-engine.test.ts checks the same reading against the real engine.
import { describe, expect, it } from 'vitest';
import { extractFlags, parseDockerfile } from '../../src/domain/builds/dockerfile/parse.ts';
import { canonical, parseReference, type ImageReference } from '../../src/domain/builds/dockerfile/reference.ts';
import { resolveDockerfile, type ImageResolver } from '../../src/domain/builds/dockerfile/resolve.ts';
import { expandWord } from '../../src/domain/builds/dockerfile/words.ts';
import { DomainError } from '../../src/domain/errors.ts';

const BUSYBOX = `sha256:${'b'.repeat(64)}`;
const OWN = `sha256:${'a'.repeat(64)}`;
/** What the written file names: the bare id (the engine never tries to pull one that went missing). */
const bare = (id: string) => id.slice('sha256:'.length);

/** alice may use busybox:latest and her own dockyard/alice/* images; everything else is unknown. */
function resolver(seen: string[] = []): ImageResolver {
  return {
    allowed: () => 'your images or busybox:latest',
    resolve: async (reference: ImageReference) => {
      seen.push(canonical(reference));
      if (canonical(reference) === 'docker.io/library/busybox:latest') return BUSYBOX;
      if (reference.domain === 'docker.io' && reference.path.startsWith('dockyard/alice/')) return OWN;
      return null;
    },
  };
}

const resolve = (text: string, options: { buildArgs?: Record<string, string>; target?: string | null; seen?: string[] } = {}) =>
  resolveDockerfile(text, { images: resolver(options.seen), buildArgs: options.buildArgs ?? {}, target: options.target ?? null });

async function refusal(text: string, options: Parameters<typeof resolve>[1] = {}): Promise<DomainError> {
  const error = await resolve(text, options).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

describe('parseDockerfile (the engine’s reading)', () => {
  const keywords = (text: string) => parseDockerfile(text).instructions.map((i) => [i.startLine, i.original]);

  it('joins continuations as they are, dropping comments and blank lines inside them', () => {
    expect(keywords('FROM busybox\nRUN echo a \\\n# inside\n\n   b \\  \n c\nR\\\nUN echo d\n')).toEqual([
      [1, 'FROM busybox'],
      [2, 'RUN echo a    b  c'],
      [7, 'RUN echo d'],
    ]);
  });

  it('reads \\r\\n line ends and a byte-order mark as the engine does', () => {
    expect(keywords('\uFEFFFROM busybox\r\nRUN echo a \\\r\n b\r\n')).toEqual([
      [1, 'FROM busybox'],
      [2, 'RUN echo a  b'],
    ]);
  });

  it('honours an escape directive only at the top', () => {
    const parsed = parseDockerfile('# escape=`\nFROM busybox\nRUN echo a `\n b\n');
    expect(parsed.escape).toBe('`');
    expect(parsed.instructions.map((i) => i.original)).toEqual(['FROM busybox', 'RUN echo a  b']);
    // After an instruction, the same line is a comment, and a backslash continues lines again.
    expect(parseDockerfile('FROM busybox\n# escape=`\nRUN echo a \\\n b\n').escape).toBe('\\');
  });

  it('refuses an escape directive that the engine would ignore (after another comment or a blank line)', () => {
    for (const text of ['# foo=bar\n# escape=`\nFROM busybox\n', '\n# escape=`\nFROM busybox\n', '# a comment\n#escape=`\nFROM busybox\n']) {
      expect(() => parseDockerfile(text)).toThrow(/would be ignored by the engine/);
    }
  });

  it('refuses a second or an invalid escape directive, as the engine does', () => {
    expect(() => parseDockerfile('# escape=`\n# escape=\\\nFROM busybox\n')).toThrow(/only one escape/);
    expect(() => parseDockerfile('# escape=x\nFROM busybox\n')).toThrow(/invalid escape/);
  });

  it('extracts leading flags like the engine (quotes, backslashes, and -- ending them)', () => {
    expect(extractFlags('--from="a b" --chown=1:1 src dst')).toEqual({ flags: ['--from=a b', '--chown=1:1'], rest: 'src dst' });
    expect(extractFlags("--fr\\om='x' -- --not-a-flag")).toEqual({ flags: ['--from=x'], rest: ' --not-a-flag' });
    expect(extractFlags('-x --y')).toEqual({ flags: [], rest: '-x --y' });
  });
});

describe('references and words', () => {
  it('normalises references as the engine does', () => {
    expect(canonical(parseReference('busybox')!)).toBe('docker.io/library/busybox:latest');
    expect(canonical(parseReference('index.docker.io/dockyard/bob/app')!)).toBe('docker.io/dockyard/bob/app:latest');
    expect(canonical(parseReference('127.0.0.1:5000/dockyard/bob/app:v1')!)).toBe('127.0.0.1:5000/dockyard/bob/app:v1');
    expect(parseReference('Busybox')).toBeNull();
    expect(parseReference('a//b')).toBeNull();
  });

  it('expands quotes, escapes and variables', () => {
    const vars = new Map([['V', '1.2']]);
    expect(expandWord('"busy"box:${V}', '\\', vars)).toBe('busybox:1.2');
    expect(expandWord("'$V'\\$V", '\\', vars)).toBe('$V$V');
    expect(expandWord('x:${MISSING:-3}${V:+-y}', '\\', vars)).toBe('x:3-y');
    expect(() => expandWord('${V/a/b}', '\\', vars)).toThrow(/not a supported substitution/);
  });
});

describe('resolveDockerfile', () => {
  it('hands the engine image ids and its own stage names, each instruction on the user’s line', async () => {
    const text = '# escape=`\n\nFROM busybox AS Build\nRUN echo `\n  hi\nFROM dockyard/alice/base:v1\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\nCOPY --from=busybox --chown=1:1 /c /c\n';
    const resolved = await resolve(text, { target: 'BUILD' });
    expect(resolved.text).toBe(
      [
        '# escape=`',
        '',
        `FROM ${bare(BUSYBOX)} AS stage-0.`,
        'RUN echo   hi',
        '',
        `FROM ${bare(OWN)} AS stage-1.`,
        'COPY --from=stage-0. /a /a',
        'COPY --from=stage-0. /b /b',
        `COPY --from=${bare(BUSYBOX)} --chown=1:1 /c /c`,
        '',
      ].join('\n'),
    );
    expect(resolved.target).toBe('stage-0.');
    expect(resolved.bases.map((b) => [b.line, b.reference])).toEqual([
      [3, 'busybox'],
      [6, 'dockyard/alice/base:v1'],
      [9, 'busybox'],
    ]);
  });

  it('expands ARGs before the first FROM with the build’s values', async () => {
    const seen: string[] = [];
    await resolve('ARG TAG=v1\nFROM dockyard/alice/base:${TAG}\n', { buildArgs: { TAG: 'v2' }, seen });
    expect(seen).toEqual(['docker.io/dockyard/alice/base:v2']);
  });

  it('passes an unknown instruction on (the engine’s message names it) and refuses a missing target', async () => {
    expect((await resolve('FROM busybox\nFORM busybox\n')).text).toBe(`FROM ${bare(BUSYBOX)} AS stage-0.\nFORM busybox\n`);
    expect((await refusal('FROM busybox\n', { target: 'nope' })).code).toBe('INVALID_INPUT');
  });

  const refused: [string, string, RegExp][] = [
    ['an empty file', '', /empty/],
    ['a comments-only file', '# nothing\n\n', /empty/],
    ['no FROM', 'RUN true\n', /no FROM/],
    ['another user’s image', 'FROM dockyard/bob/app\n', /not an image you can build on/],
    ['another user’s image through docker.io', 'FROM docker.io/dockyard/bob/app:latest\n', /not an image you can build on/],
    ['a registry-qualified name (a push left on the engine)', 'FROM 127.0.0.1:5000/dockyard/alice/app\n', /not an image you can build on/],
    ['a short image id', 'FROM 331770\n', /not an image you can build on/],
    ['a full image id', `FROM ${OWN}\n`, /not an image you can build on/],
    ['an id prefix in COPY --from', 'FROM busybox\nCOPY --from=a9a535 /x /x\n', /not an image you can build on/],
    ['a digits-only COPY --from (a stage index to the engine)', 'FROM busybox\nCOPY --from=331770 /x /x\n', /no earlier stage/],
    ['a digest', `FROM busybox@sha256:${'c'.repeat(64)}\n`, /digest/],
    ['an own-namespace prefix trick', 'FROM dockyard/alicex/app\n', /not an image you can build on/],
    ['a variable naming another user’s image', 'ARG I=dockyard/bob/app\nFROM ${I}\n', /not an image you can build on/],
    ['a variable in COPY --from', 'FROM busybox\nARG S=x\nCOPY --from=$S /x /x\n', /may not use variables/],
    ['a later stage by index', 'FROM busybox\nCOPY --from=1 /x /x\n', /no earlier stage/],
    ['FROM flags', 'FROM --platform=linux/arm64 busybox\n', /--platform is not supported/],
    ['an unknown COPY flag', 'FROM busybox\nCOPY --link /x /x\n', /--link is not allowed/],
    ['ADD from https', 'FROM busybox\nADD https://example.com/x.tgz /x\n', /remote/],
    ['ADD from http in JSON form', 'FROM busybox\nADD ["http://example.com/x", "/x"]\n', /remote/],
    ['ADD with a quoted URL', 'FROM busybox\nadd --chown=1:1 "HTTPS://example.com/x" /x\n', /remote/],
    ['ADD from git@', 'FROM busybox\nADD git@github.com:a/b.git /src\n', /remote/],
    ['ADD spread over continuations', 'FROM busybox\nADD \\\n  https://example.com/x \\\n  /x\n', /remote/],
    ['ADD with a variable source', 'FROM busybox\nARG U=https://example.com/x\nADD $U /x\n', /variables/],
    ['ONBUILD (triggers would be read anew by a later build)', 'FROM busybox\nONBUILD RUN true\n', /ONBUILD is not supported/],
    ['a stage copying from itself (the engine would look its name up as an image)', 'FROM busybox AS a\nCOPY --from=a /x /x\n', /not an image you can build on/],
    ['a stage copying from itself by index', 'FROM busybox\nCOPY --from=0 /x /x\n', /no earlier stage/],
    ['"--" before a path that looks like a flag', 'FROM busybox\nCOPY -- --from=dockyard/bob/app /secret /x\n', /may not start with "-"/],
    ['a no-break space before a path that looks like a flag', 'FROM busybox\nCOPY \u00a0--from=dockyard/bob/app /secret /x\n', /may not start with "-"/],
    ['an escape character hidden by a no-break space (the written line would join the next)', 'FROM busybox\nCOPY \\\u00a0\n--from=dockyard/bob/app /secret /x\n', /ends with an escape character|not an instruction/],
    ['an escape character hidden by \\r\\r', 'FROM busybox\nADD \\\r\r\nhttp://127.0.0.1:9/x /y\n', /ends with an escape character|not an instruction/],
    ['a second byte-order mark', '\uFEFF\uFEFFFROM dockyard/bob/app\n', /byte-order mark/],
    ['a keyword that is not plain ASCII', 'FROM busybox\nONBU\u0130LD RUN true\n', /is not an instruction/],
    ['a JSON array followed by more text', 'FROM busybox\nADD ["http\\u003a//127.0.0.1:9/x", "/y"] junk\n', /JSON array must be the whole/],
    ['a RUN JSON array followed by more text', 'FROM busybox\nRUN ["true"] && cat /secret\n', /JSON array must be the whole/],
    ['RUN --mount', 'FROM busybox\nRUN --mount=type=secret,id=x cat /run/secrets/x\n', /--mount/],
    ['an instruction split by a continuation', 'FROM busybox\nR\\\nUN --mount=type=cache,target=/x true\n', /--mount/],
    ['a heredoc', 'FROM busybox\nRUN <<EOF\necho hi\nEOF\n', /heredoc/],
    ['a COPY heredoc', 'FROM busybox\nCOPY <<-"X" /x\n', /heredoc/],
    [
      'the issue’s directive trick (an ignored escape hiding a FROM)',
      '# foo=bar\n# escape=`\nFROM busybox\nRUN echo `\nFROM dockyard/bob/app\n',
      /would be ignored/,
    ],
    ['the same trick without the directive (the hidden FROM is read)', 'FROM busybox\nRUN echo `\nFROM dockyard/bob/app\n', /Line 3: FROM "dockyard\/bob\/app"/],
    ['a hidden ADD of a loopback URL', '# foo=bar\nFROM busybox\nRUN echo `\nADD http://127.0.0.1:9/x.tar /\n', /Line 4: ADD from a remote source/],
  ];
  it.each(refused)('refuses %s with INVALID_DOCKERFILE naming the line', async (_name, text, message) => {
    const error = await refusal(text);
    expect(error.code).toBe('INVALID_DOCKERFILE');
    expect(error.field).toBe('dockerfile');
    expect(error.message).toMatch(message);
  });

  it('words another user’s image exactly like a missing one', async () => {
    const other = (await refusal('FROM dockyard/bob/app\n')).message;
    const missing = (await refusal('FROM dockyard/nobody/app\n')).message;
    expect(other.replace('bob', 'X')).toBe(missing.replace('nobody', 'X'));
  });
});
