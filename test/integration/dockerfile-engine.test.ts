// The differential test of the Dockerfile reader: for a corpus of tricky files (hand-written ones and
// generated ones), the real engine's reading (the `Step n/m : …` lines it prints for every instruction it
// runs, the lines and instructions named in its parse errors, and the markers its RUN steps echo) equals
// the service's. Then the file the service writes for the engine is built too: the engine runs exactly the
// instructions the service wrote, with the same output as the user's file.
import Docker from 'dockerode';
import fc from 'fast-check';
import tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readDockerfile } from '../../src/domain/builds/dockerfile/parse.ts';
import { canonical } from '../../src/domain/builds/dockerfile/reference.ts';
import { resolveDockerfile } from '../../src/domain/builds/dockerfile/resolve.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const busyboxId = (await docker.getImage('busybox:latest').inspect()).Id;
const run = Math.random().toString(36).slice(2, 8);
const tags: string[] = [];

afterAll(async () => {
  for (const tag of tags) await docker.getImage(tag).remove({ force: true }).catch(() => {});
});

interface EngineReading {
  steps: string[];
  /** The number of instructions the engine counted (the m of `Step n/m`), or null if it printed no step. */
  total?: number | null;
  markers: string[];
  /** The engine refused the file before running it: the line and instruction its message names. */
  parseError: { line: number; instruction: string } | { directive: 'only one escape' | 'invalid escape' } | { refused: string } | null;
}

/** Builds `text` as the only file of a context with the classic builder, as Dockyard does. */
async function engineReading(text: string): Promise<EngineReading> {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, text);
  pack.finalize();
  const tag = `dockyard-difftest-${run}:${tags.length}`;
  tags.push(tag);
  let output = '';
  try {
    const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true, nocache: true });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve()), (event: { stream?: string }) => {
        output += event.stream ?? '';
      });
    });
  } catch (error) {
    const message = (error as { json?: { message?: string } }).json?.message ?? String(error);
    const parse = /line (\d+): unknown instruction: (\S+)/.exec(message);
    if (parse) return { steps: [], markers: [], parseError: { line: Number(parse[1]), instruction: parse[2]!.toLowerCase() } };
    if (/only one escape parser directive/.test(message)) return { steps: [], markers: [], parseError: { directive: 'only one escape' } };
    if (/invalid ESCAPE/i.test(message)) return { steps: [], markers: [], parseError: { directive: 'invalid escape' } };
    // Any other refusal of the whole file before a step ran (e.g. "ENV must have two arguments").
    if (/failed to parse Dockerfile|dockerfile parse error/i.test(message)) return { steps: [], markers: [], parseError: { refused: message } };
    if (!/returned a non-zero code|COPY failed|no such file/i.test(message) && !output) throw error;
  }
  // (The engine's warnings come in red: colour codes stripped.)
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const total = lines.map((line) => /^Step \d+\/(\d+) : /.exec(line)?.[1]).find(Boolean);
  return {
    total: total ? Number(total) : null,
    steps: lines.flatMap((line) => /^Step \d+\/\d+ : (.*)$/.exec(line)?.slice(1) ?? []).map((s) => s.trim()),
    markers: lines.filter((line) => /^MARK-\d+/.test(line.trim())).map((line) => line.trim()),
    parseError: null,
  };
}

/** The service's reading in the engine's terms. */
function serviceReading(text: string): Omit<EngineReading, 'markers'> {
  let instructions;
  try {
    ({ instructions } = readDockerfile(text));
  } catch (error) {
    const directive = /only one escape|invalid escape/.exec((error as Error).message)?.[0] as 'only one escape' | 'invalid escape' | undefined;
    if (directive) return { steps: [], parseError: { directive } };
    throw error;
  }
  const unknown = instructions.find((i) => !KNOWN.has(i.keyword));
  if (unknown) return { steps: [], parseError: { line: unknown.startLine, instruction: unknown.keyword } };
  return { steps: instructions.map((i) => i.original), parseError: null };
}

const KNOWN = new Set(['from', 'run', 'cmd', 'label', 'maintainer', 'expose', 'env', 'add', 'copy', 'entrypoint', 'volume', 'user', 'workdir', 'arg', 'onbuild', 'stopsignal', 'healthcheck', 'shell']);

async function resolved(text: string): Promise<string> {
  return (
    await resolveDockerfile(text, {
      images: { allowed: () => 'busybox', resolve: async (r) => (canonical(r) === 'docker.io/library/busybox:latest' ? busyboxId : null) },
      buildArgs: {},
      target: null,
    })
  ).text;
}

/** Engine and service agree on the user's file; the engine runs the service's file as written, with the same output. */
async function expectSameReading(text: string): Promise<void> {
  const engine = await engineReading(text);
  const service = serviceReading(text);
  expect({ steps: engine.steps, parseError: engine.parseError }, JSON.stringify(text)).toEqual(service);

  if (service.parseError && 'directive' in service.parseError) return; // refused by both, nothing is written
  const written = await resolved(text).catch((error: unknown) => error as Error);
  if (written instanceof Error) {
    // Refused with a reason (an escape directive the engine would ignore, a word that is no instruction…):
    // nothing is handed to the engine.
    expect((written as { code?: string }).code, written.message).toBe('INVALID_DOCKERFILE');
    return;
  }
  const ofWritten = await engineReading(written);
  const writtenInstructions = written.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
  if (service.parseError) {
    expect(ofWritten.parseError, written).toEqual(service.parseError);
  } else {
    expect(ofWritten.steps, written).toEqual(writtenInstructions);
    expect(ofWritten.markers, written).toEqual(engine.markers);
  }
}

describe('the engine reads Dockerfiles as the service does', () => {
  const corpus: [string, string][] = [
    ['a multi-stage file with markers', 'FROM busybox AS one\nRUN echo MARK-1\nFROM busybox\nCOPY --from=one /bin/busybox /x\nRUN echo MARK-2\n'],
    ['an unknown directive ending the directives, then a trailing backtick (not an escape)', '# foo=bar\nFROM busybox\nENV A=x`\nLABEL hidden=1\nRUN echo MARK-1\n'],
    ['a blank first line: the escape directive below it is a comment', '\n# escape=`\nFROM busybox\nENV A x `\nENV B=y\n'],
    ['an unknown directive first: the escape directive below it is a comment', '# foo=bar\n# escape=`\nFROM busybox\nENV A x `\nENV B=y\n'],
    ['an honoured escape directive', '# escape=`\nFROM busybox\nRUN echo MARK-1 `\n  MARK-2\nRUN echo MARK-3\\\n'],
    ['an indented escape directive', '   # escape=`\nFROM busybox\nENV A=1 `\n B=2\nRUN echo MARK-1\n'],
    ['comments and blank lines inside a continuation', 'FROM busybox\nRUN echo MARK-1 \\\n# c\n\n   \\\n   MARK-2\n'],
    ['spaces and tabs after the escape character', 'FROM busybox\nRUN echo MARK-1 \\ \t\n MARK-2\nRUN echo MARK-3 \\x\n'],
    ['CRLF line ends and a byte-order mark', '\uFEFFFROM busybox\r\nRUN echo MARK-1 \\\r\n MARK-2\r\n'],
    ['lower-case keywords and tabs', 'from\tbusybox\nrun\techo MARK-1\n  eNv  A=1\n'],
    ['an instruction split inside its keyword', 'FROM busybox\nR\\\nUN echo MARK-1\n'],
    ['quotes inside a flag', 'FROM busybox AS a\nFROM busybox\nCOPY --"from"=a /bin/busybox /x\nRUN echo MARK-1\n'],
    ['an unknown instruction', 'FROM busybox\nFORM busybox\n'],
    ['a continuation that swallows the next instruction', 'FROM busybox\nRUN echo MARK-1 \\\nRUN echo MARK-2\n'],
    ['a line left open at the end of the file', 'FROM busybox\nRUN echo MARK-1 \\'],
  ];
  it.each(corpus)('%s', async (_name, text) => {
    await expectSameReading(text);
  }, 120_000);

  it('agrees on generated files (directives, comments, continuations, both escape characters, CRLF)', async () => {
    let marker = 0;
    const header = fc.array(fc.constantFrom('# escape=`', '# escape=\\', '#escape = `', '# Escape=`', '# foo=bar', '', '# a comment', '  # escape=`'), { maxLength: 3 });
    const esc = fc.tuple(fc.constantFrom('\\', '`'), fc.constantFrom('', ' ', '\t', ' \t '));
    const filler = fc.array(fc.constantFrom('', '   ', '# c', '  # c', '\t'), { maxLength: 2 });
    const body = fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom('ENV', 'env', 'LABEL'), fc.option(fc.tuple(esc, filler)), fc.constantFrom('W', ' W', '  M')).map(([kw, cont, tail]) => {
          const n = marker++;
          const first = `${kw} K${n}=v${n}`;
          if (!cont) return [first];
          const [[c, spaces], fill] = cont;
          // Continued, the tail is one more pair; not continued, it is an unknown instruction (W3=w).
          return [`${first}${c}${spaces}`, ...fill, `${tail}${n}=w`];
        }),
        fc.constant(null).map(() => [`RUN echo MARK-${marker++}`]),
        fc.constantFrom(['# comment'], [''], ['  ']),
      ),
      { minLength: 1, maxLength: 4 },
    );
    const file = fc.tuple(header, body, fc.boolean()).map(([head, lines, crlf]) => [...head, 'FROM busybox', ...lines.flat()].join(crlf ? '\r\n' : '\n') + '\n');
    await fc.assert(
      fc.asyncProperty(file, async (text) => {
        await expectSameReading(text);
      }),
      { numRuns: 20, seed: 20261202, endOnFailure: true },
    );
  }, 600_000);

  it('reads whatever the service writes exactly as written, even from files full of unusual characters', async () => {
    // The property that keeps tenants apart: the written file may be refused, but if it is written, the
    // engine counts and runs exactly its instructions (no line joined, split, hidden or turned into a flag).
    const odd = fc.constantFrom('\u00a0', '\u0085', '\u3000', '\v', '\f', '\r', '\\', '`', ' -- ', '--from=busybox', '["x"] y', '\uFEFF', '#', ' ', '\t', 'a', '$X');
    const line = fc.tuple(fc.constantFrom('COPY', 'ADD', 'RUN echo', 'ENV A', 'LABEL a=', 'WORKDIR /w', ''), fc.array(odd, { maxLength: 4 })).map(([start, rest]) => start + rest.join(''));
    const file = fc.array(line, { minLength: 1, maxLength: 4 }).map((lines) => ['FROM busybox', ...lines, 'RUN echo MARK-0'].join('\n') + '\n');
    let written = 0;
    await fc.assert(
      fc.asyncProperty(file, async (text) => {
        const result = await resolved(text).catch((error: unknown) => error as Error);
        if (result instanceof Error) {
          expect((result as { code?: string }).code, result.message).toBe('INVALID_DOCKERFILE');
          return;
        }
        written++;
        const instructions = result.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
        const engine = await engineReading(result);
        if (engine.parseError) {
          // Refused by the engine before anything ran; an unknown instruction is one at a line the service wrote.
          if ('line' in engine.parseError) expect(result.split('\n')[engine.parseError.line - 1]?.toLowerCase().startsWith(engine.parseError.instruction), JSON.stringify({ text, result, engine })).toBe(true);
          return;
        }
        expect(engine.total, JSON.stringify({ text, result })).toBe(instructions.length);
        expect(engine.steps, JSON.stringify({ text, result })).toEqual(instructions.slice(0, engine.steps.length));
      }),
      { numRuns: 40, seed: 4242, endOnFailure: true },
    );
    expect(written).toBeGreaterThan(5);
  }, 600_000);
});
