import { z } from 'zod';
import { conditionSchema } from './condition';
import { fieldPathSchema } from './field-path';

/**
 * An integration's own pipeline, run by the processor after the Org Data Layer on that integration's copy of
 * the event, and stored on the integration by the control plane:
 *
 *   { type: 'map', rename: { 'properties.sku': 'properties.product_id' },
 *                  set: { 'properties.channel': 'web', event: 'Purchase' },
 *                  remove: ['properties.internal_note'] }
 *   { type: 'filter', condition: { field: 'properties.value', op: 'exists' } }   // false → not delivered
 *
 * Map writes are confined to `properties.*`, `traits.*` and the event name, so a pipeline cannot forge the
 * gateway's stamp (provenance, org, receivedAt) or consent. Within a map step: rename, then set, then
 * remove. Steps run in order.
 */

const WRITABLE_ROOTS: ReadonlySet<string> = new Set(['properties', 'traits']);

const writablePathSchema = fieldPathSchema.refine((path) => {
  if (path === 'event') return true;
  const [root, ...rest] = path.split('.');
  return root !== undefined && WRITABLE_ROOTS.has(root) && rest.length > 0;
}, 'pipelines may write `event` or a path under `properties.` or `traits.`');

export type PipelineJsonValue =
  | string
  | number
  | boolean
  | null
  | PipelineJsonValue[]
  | { [key: string]: PipelineJsonValue };

const jsonValueSchema = z.json() as unknown as z.ZodType<PipelineJsonValue>;

export const MAX_PIPELINE_STEPS = 50;

export const pipelineStepSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('map'),
    rename: z.record(writablePathSchema, writablePathSchema).default({}),
    set: z.record(writablePathSchema, jsonValueSchema).default({}),
    remove: z.array(writablePathSchema).max(100).default([]),
  }),
  z.strictObject({ type: z.literal('filter'), condition: conditionSchema }),
]);
export type PipelineStep = z.output<typeof pipelineStepSchema>;
export type PipelineStepInput = z.input<typeof pipelineStepSchema>;

/** The steps of one integration, in order (no default: callers say what absence means). */
export const pipelineStepsSchema = z.array(pipelineStepSchema).max(MAX_PIPELINE_STEPS);
