// Transition tables: for each named transition of an aggregate, the states it may start from, the
// states it may end in, and the fields it may set beside `state`. The lifecycle module of each
// aggregate (jobs, builds, pipelines) guards its conditional updates with its table
// (UPDATE … WHERE id = ? AND state IN (from)).
export interface Transition<S extends string, F extends string> {
  readonly from: readonly S[];
  readonly to: readonly S[];
  readonly fields: readonly F[];
}

export type TransitionTable<S extends string, F extends string = string> = Readonly<Record<string, Transition<S, F>>>;

/** Whether `name` may move an aggregate from `from` to `to`. */
export function isAllowed<S extends string>(table: TransitionTable<S>, name: string, from: S, to: S): boolean {
  const transition = table[name];
  return transition !== undefined && transition.from.includes(from) && transition.to.includes(to);
}

/** Throws when `fields` holds a field the transition may not set. */
export function checkFields(table: TransitionTable<string>, name: string, fields: Record<string, unknown>): void {
  const transition = table[name];
  if (!transition) throw new Error(`unknown transition ${name}`);
  for (const field of Object.keys(fields)) {
    if (field !== 'state' && !transition.fields.includes(field)) throw new Error(`transition ${name} may not set ${field}`);
  }
}

/** Every (transition, from, to) the table refuses, over all `states`: what tests try and expect refused. */
export function illegalTransitions<S extends string>(table: TransitionTable<S>, states: readonly S[]): { name: string; from: S; to: S }[] {
  const refused: { name: string; from: S; to: S }[] = [];
  for (const [name, transition] of Object.entries(table)) {
    for (const from of states) {
      for (const to of transition.to) if (!transition.from.includes(from)) refused.push({ name, from, to });
    }
  }
  return refused;
}
