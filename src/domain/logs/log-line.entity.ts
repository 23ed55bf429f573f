import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** What produced a log: a build or a job. */
export type LogSource = 'build' | 'job';
export type LogStream = 'stdout' | 'stderr' | 'system';

/** One line of output. `seq` counts from 1 per (source, sourceId) with no gaps; it is how readers resume. */
export const LogLine = defineEntity({
  name: 'LogLine',
  tableName: 'log_lines',
  properties: {
    source: p.string().length(8).primary().$type<LogSource>(),
    sourceId: p.integer().primary(),
    seq: p.integer().primary(),
    stream: p.string().length(8).$type<LogStream>(),
    text: p.text(),
    at: p.datetime(),
  },
});
export type LogLine = InferEntity<typeof LogLine>;
