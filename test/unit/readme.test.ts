// The README is the newcomer's manual: it must list every setting the service reads and the two commands.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('has a configuration row for every setting', () => {
    for (const setting of SETTINGS) expect(readme).toContain(`| \`${setting.name}\` |`);
  });

  it('gives the two commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
