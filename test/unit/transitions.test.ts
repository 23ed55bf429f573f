// The transition tables of jobs, builds and pipelines: every transition the table does not list is refused,
// every one it lists is allowed, and a transition may set only its own fields.
import { describe, expect, it } from 'vitest';
import { checkFields, illegalTransitions, isAllowed, type TransitionTable } from '../../src/domain/transitions.ts';
import { JOB_TRANSITIONS } from '../../src/domain/jobs/job-transitions.ts';
import { JOB_STATES } from '../../src/domain/jobs/job.entity.ts';
import { BUILD_TRANSITIONS } from '../../src/domain/builds/build-transitions.ts';
import { BUILD_STATES } from '../../src/domain/builds/build.entity.ts';
import { PIPELINE_TRANSITIONS } from '../../src/domain/pipelines/pipeline-transitions.ts';
import { PIPELINE_STATES } from '../../src/domain/pipelines/pipeline.entity.ts';

const tables: [string, TransitionTable<string>, readonly string[]][] = [
  ['job', JOB_TRANSITIONS, JOB_STATES],
  ['build', BUILD_TRANSITIONS, BUILD_STATES],
  ['pipeline', PIPELINE_TRANSITIONS, PIPELINE_STATES],
];

describe.each(tables)('%s transitions', (_kind, table, states) => {
  it('names only known states', () => {
    for (const transition of Object.values(table)) for (const state of [...transition.from, ...transition.to]) expect(states).toContain(state);
  });

  it('refuses every transition the table does not list', () => {
    const refused = illegalTransitions(table, states);
    expect(refused.length).toBeGreaterThan(0);
    for (const { name, from, to } of refused) expect(isAllowed(table, name, from, to)).toBe(false);
  });

  it('allows every transition it lists, and nothing to a state it does not list', () => {
    for (const [name, transition] of Object.entries(table)) {
      for (const from of transition.from) {
        for (const to of states) expect(isAllowed(table, name, from, to)).toBe(transition.to.includes(to));
      }
    }
    expect(isAllowed(table, 'noSuchTransition', states[0]!, states[0]!)).toBe(false);
  });

  it('lets a transition set only its own fields', () => {
    for (const [name, transition] of Object.entries(table)) {
      expect(() => checkFields(table, name, Object.fromEntries(transition.fields.map((f) => [f, null])))).not.toThrow();
      expect(() => checkFields(table, name, { owner: 1 })).toThrow(/may not set owner/);
    }
  });
});

describe('job transitions', () => {
  it('never leave a finished job except by a new submit', () => {
    for (const [name, transition] of Object.entries(JOB_TRANSITIONS)) {
      if (name !== 'queue') expect(transition.from).not.toContain('SUCCEEDED');
    }
  });
});
