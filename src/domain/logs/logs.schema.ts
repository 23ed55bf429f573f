// GraphQL for log lines, shared by builds and jobs.
import { builder } from '../../graphql/builder.ts';
import type { LogLine } from './log-line.entity.ts';

export const LogStreamEnum = builder.enumType('LogStream', {
  values: ['stdout', 'stderr', 'system'] as const,
  description: '`system` lines are written by Dockyard itself (fetching, pushing, the final state).',
});

export const LogLineRef = builder.objectRef<LogLine>('LogLine').implement({
  description: 'One line of output. `seq` counts from 1 without gaps; pass the last one you saw as `afterSeq` to resume.',
  fields: (t) => ({
    seq: t.exposeInt('seq'),
    stream: t.expose('stream', { type: LogStreamEnum }),
    text: t.exposeString('text'),
    at: t.expose('at', { type: 'DateTime' }),
  }),
});
