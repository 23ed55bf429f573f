import { builder } from './builder.ts';

/** A name and a value: build args, labels, environment variables. */
export const KeyValueRef = builder.objectRef<{ key: string; value: string }>('KeyValue').implement({
  fields: (t) => ({ key: t.exposeString('key'), value: t.exposeString('value') }),
});

export const KeyValueInput = builder.inputType('KeyValueInput', {
  fields: (t) => ({ key: t.string({ required: true }), value: t.string({ required: true }) }),
});

export const keyValues = (record: Record<string, string>) => Object.entries(record).map(([key, value]) => ({ key, value }));
