// Every string argument of an operation goes through the shared input check (http/input-guard.ts)
// once, before any resolver runs: inline literals and variable values alike, over HTTP, SSE and
// WebSocket (which executes through the same envelop). A refusal is the operation's only error,
// INVALID_INPUT with `extensions.field` the argument path (`input.name`, `input.env[1].value`); a
// variable used by no argument is named `$name`.
import {
  getOperationAST,
  GraphQLError,
  Kind,
  type DocumentNode,
  type ExecutionArgs,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { DomainError } from '../domain/errors.ts';
import { checkInput, checkString, type InputPath } from '../http/input-guard.ts';

export function useArgumentGuard(): Plugin {
  const guard = ({ args, setResultAndStopExecution }: { args: ExecutionArgs; setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void }) => {
    try {
      checkArguments(args.document, args.operationName, args.variableValues);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      setResultAndStopExecution({ errors: [new GraphQLError(error.message, { originalError: error })] });
    }
  };
  return { onExecute: guard, onSubscribe: guard };
}

/** Throws INVALID_INPUT for the first unacceptable string among the operation's arguments. */
export function checkArguments(document: DocumentNode, operationName: string | null | undefined, variables: Readonly<Record<string, unknown>> | null | undefined): void {
  const values = variables ?? {};
  const operation = getOperationAST(document, operationName);
  // Without an operation to run, execution refuses the request itself; only the variables are checked.
  if (!operation) return checkInput(values, []);

  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const usedAt = new Map<string, InputPath>();
  const visitedFragments = new Set<string>();

  const visitValue = (node: ValueNode, path: InputPath): void => {
    switch (node.kind) {
      case Kind.STRING:
        return checkString(node.value, path);
      case Kind.VARIABLE:
        if (!usedAt.has(node.name.value)) usedAt.set(node.name.value, path);
        return;
      case Kind.LIST:
        return node.values.forEach((value, index) => visitValue(value, [...path, index]));
      case Kind.OBJECT:
        return node.fields.forEach((field) => visitValue(field.value, [...path, field.name.value]));
      default:
    }
  };
  const visitSelections = (selectionSet: SelectionSetNode): void => {
    for (const selection of selectionSet.selections) {
      for (const directive of selection.directives ?? []) for (const arg of directive.arguments ?? []) visitValue(arg.value, [arg.name.value]);
      if (selection.kind === Kind.FIELD) {
        for (const arg of selection.arguments ?? []) visitValue(arg.value, [arg.name.value]);
        if (selection.selectionSet) visitSelections(selection.selectionSet);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visitSelections(selection.selectionSet);
      } else if (!visitedFragments.has(selection.name.value)) {
        visitedFragments.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) visitSelections(fragment.selectionSet);
      }
    }
  };
  visitSelections(operation.selectionSet);

  // Each variable once, under the path of the first argument that uses it.
  for (const [name, value] of Object.entries(values)) checkInput(value, usedAt.get(name) ?? [`$${name}`]);
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    if (definition.defaultValue && !Object.hasOwn(values, name)) visitValue(definition.defaultValue, usedAt.get(name) ?? [`$${name}`]);
  }
}
