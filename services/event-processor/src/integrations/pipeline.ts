import type { CanonicalEvent } from '@signal/events';
import {
  compileCondition,
  type FieldPath,
  type PipelineStep,
  type Predicate,
  splitPath,
} from '@signal/org-data-layer';

/**
 * Compiles an integration's pipeline (schema and semantics: `@signal/org-data-layer`, `pipeline.schema.ts`)
 * once per integration version into one function the hot path calls per event.
 */

/** The event after the pipeline, or null when a filter step refused it. */
export type Pipeline = (event: CanonicalEvent) => CanonicalEvent | null;

type Tree = Record<string, unknown>;

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Copies the containers along `path` (copy-on-write) and returns the parent of the last segment. */
function parentForWrite(root: Tree, path: FieldPath): Tree | null {
  let node = root;
  for (let i = 0; i < path.length - 1; i += 1) {
    const key = path[i] as string;
    const child = Object.hasOwn(node, key) ? node[key] : undefined;
    if (child !== undefined && !isTree(child)) return null;
    const copy: Tree = child === undefined ? {} : { ...child };
    node[key] = copy;
    node = copy;
  }
  return node;
}

function readOwn(root: Tree, path: FieldPath): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (!isTree(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

function setAt(root: Tree, path: FieldPath, value: unknown): void {
  const parent = parentForWrite(root, path);
  const last = path[path.length - 1];
  if (parent !== null && last !== undefined) parent[last] = value;
}

function removeAt(root: Tree, path: FieldPath): void {
  if (readOwn(root, path) === undefined) return;
  const parent = parentForWrite(root, path);
  const last = path[path.length - 1];
  if (parent !== null && last !== undefined) delete parent[last];
}

type Step = (event: Tree) => Tree | null;

function compileStep(step: PipelineStep): Step {
  if (step.type === 'filter') {
    const predicate: Predicate = compileCondition(step.condition);
    return (event) => (predicate(event) ? event : null);
  }
  const renames = Object.entries(step.rename).map(([from, to]) => [splitPath(from), splitPath(to)] as const);
  const sets = Object.entries(step.set).map(([path, value]) => [splitPath(path), value] as const);
  const removals = step.remove.map(splitPath);
  return (input) => {
    const event: Tree = { ...input };
    for (const [from, to] of renames) {
      const value = readOwn(event, from);
      if (value === undefined) continue;
      removeAt(event, from);
      setAt(event, to, value);
    }
    for (const [path, value] of sets) setAt(event, path, structuredClone(value));
    for (const path of removals) removeAt(event, path);
    return event;
  };
}

export function compilePipeline(steps: readonly PipelineStep[]): Pipeline {
  if (steps.length === 0) return (event) => event;
  const compiled = steps.map(compileStep);
  return (event) => {
    let current: Tree | null = event as unknown as Tree;
    for (const step of compiled) {
      current = step(current);
      if (current === null) return null;
    }
    // The result is re-validated against the canonical schema before it is published.
    return current as unknown as CanonicalEvent;
  };
}
