// Large strings that many subscribers receive (a log chunk's text goes to every viewer of the log) are
// escaped into JSON once: graphql-ws stringifies every message for every socket, and escaping a chunk of
// thousands of lines a hundred times was most of the cost of a fast log with many viewers. The message
// replacer swaps a registered string for the JSON made the first time (JSON.rawJSON, Node 21+).

declare global {
  interface JSON {
    rawJSON(text: string): unknown;
  }
}

/** Shorter strings are cheap to escape again; longer ones are kept for the most recent chunks only. */
const MIN_LENGTH = 1024;
const MAX_ENTRIES = 64;
const serialized = new Map<string, unknown>();

/** Registers `text` (returned as it is) so that messages carrying it reuse one JSON encoding of it. */
export function serializeOnce(text: string): string {
  if (text.length >= MIN_LENGTH && !serialized.has(text)) {
    serialized.set(text, JSON.rawJSON(JSON.stringify(text)));
    if (serialized.size > MAX_ENTRIES) serialized.delete(serialized.keys().next().value!);
  }
  return text;
}

/** graphql-ws's `jsonMessageReplacer`: a registered string becomes its JSON, anything else stays. */
export function jsonMessageReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.length >= MIN_LENGTH ? (serialized.get(value) ?? value) : value;
}
