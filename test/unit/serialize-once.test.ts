import { describe, expect, it } from 'vitest';
import { jsonMessageReplacer, serializeOnce } from '../../src/graphql/serialize-once.ts';

describe('serializeOnce', () => {
  it('gives the same JSON as JSON.stringify for registered strings, whatever they hold', () => {
    const text = Array.from({ length: 500 }, (_, i) => `line ${i} "quoted" \\ tab\t ünïcode ${'\u2028'} \u0001\n`).join('');
    expect(serializeOnce(text)).toBe(text);
    const message = { id: '1', type: 'next', payload: { data: { jobLogChunks: { firstSeq: 1, lastSeq: 500, text } } } };
    const json = JSON.stringify(message, jsonMessageReplacer as (key: string, value: unknown) => unknown);
    expect(json).toBe(JSON.stringify(message));
    expect(JSON.parse(json)).toEqual(message);
  });

  it('leaves short and unregistered strings alone, and forgets the oldest past its size', () => {
    const short = serializeOnce('a\nb');
    expect(JSON.stringify({ short }, jsonMessageReplacer as never)).toBe('{"short":"a\\nb"}');
    const many = Array.from({ length: 100 }, (_, i) => serializeOnce(`${i}\n`.repeat(600)));
    for (const text of many) expect(JSON.parse(JSON.stringify([text], jsonMessageReplacer as never))).toEqual([text]);
  });
});
