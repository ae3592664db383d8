import type { CanonicalEvent, JsonValue } from '@signal/events';
import { z } from 'zod';
import { compileCondition, conditionSchema, type Predicate } from '../org-data-layer/condition';
import { type FieldPath, fieldPathSchema, splitPath } from '../org-data-layer/field-path';

/**
 * An integration's own pipeline, run after the Org Data Layer on that integration's copy of the event:
 *
 *   { type: 'map', rename: { 'properties.sku': 'properties.product_id' },
 *                  set: { 'properties.channel': 'web', event: 'Purchase' },
 *                  remove: ['properties.internal_note'] }
 *   { type: 'filter', condition: { field: 'properties.value', op: 'exists' } }   // false → not delivered
 *
 * Map writes are confined to `properties.*`, `traits.*` and the event name, so a pipeline cannot forge the
 * gateway's stamp (provenance, org, receivedAt) or consent. Within a map step: rename, then set, then
 * remove. Steps run in order; compiled once per integration.
 */

const WRITABLE_ROOTS: ReadonlySet<string> = new Set(['properties', 'traits']);

const writablePathSchema = fieldPathSchema.refine((path) => {
  if (path === 'event') return true;
  const [root, ...rest] = path.split('.');
  return root !== undefined && WRITABLE_ROOTS.has(root) && rest.length > 0;
}, 'pipelines may write `event` or a path under `properties.` or `traits.`');

const jsonValueSchema = z.json() as unknown as z.ZodType<JsonValue>;

export const pipelineStepSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('map'),
    rename: z.record(writablePathSchema, writablePathSchema).default({}),
    set: z.record(writablePathSchema, jsonValueSchema).default({}),
    remove: z.array(writablePathSchema).max(100).default([]),
  }),
  z.strictObject({ type: z.literal('filter'), condition: conditionSchema }),
]);
export const pipelineSchema = z.array(pipelineStepSchema).max(50).default([]);
export type PipelineStep = z.output<typeof pipelineStepSchema>;
export type PipelineStepInput = z.input<typeof pipelineStepSchema>;

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
