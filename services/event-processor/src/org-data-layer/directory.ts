import { type ConsentRequirement, consentRequirementSchema } from '@signal/consent';
import { integrationIdSchema } from '@signal/events';
import { pipelineStepsSchema } from '@signal/org-data-layer';
import { z } from 'zod';
import { compilePipeline, type Pipeline } from '../integrations/pipeline';
import type { ProcessorMetrics } from '../metrics';
import type { IntegrationSource, OrgDataLayerSource, ProcessorLogger } from '../ports';
import { type CompileDataLayerOptions, type CompiledDataLayer, compileDataLayer } from './compile';

/** An integration ready for the hot path: validated, its pipeline compiled. */
export interface CompiledIntegration {
  readonly id: string;
  readonly vendor: string;
  readonly enabled: boolean;
  readonly consent: ConsentRequirement;
  readonly pipeline: Pipeline;
}

const integrationSchema = z.object({
  id: integrationIdSchema,
  vendor: z.string().min(1).max(64),
  enabled: z.boolean(),
  consent: consentRequirementSchema,
  pipeline: pipelineStepsSchema.default([]),
});

export class SourceUnavailableError extends Error {
  override readonly name = 'SourceUnavailableError';
  readonly code = 'config_unavailable';
  readonly retryable = true;
}

interface Entry<T> {
  value: T | undefined;
  fetchedAt: number;
  loading: Promise<T> | undefined;
}

export interface DataLayerDirectoryOptions {
  readonly dataLayers: OrgDataLayerSource;
  readonly integrations: IntegrationSource;
  /** How long a fetched config or integration list is used before it is fetched again. */
  readonly refreshMs: number;
  readonly compile?: CompileDataLayerOptions;
  readonly logger: ProcessorLogger;
  readonly metrics: ProcessorMetrics;
  readonly now?: () => number;
}

export interface DataLayerDirectory {
  dataLayer(orgId: string): Promise<CompiledDataLayer>;
  integrations(pipelineId: string): Promise<readonly CompiledIntegration[]>;
}

/**
 * Caches each org's compiled Org Data Layer and each pipeline's integrations, refetching after `refreshMs`
 * (one fetch at a time per key). A config is recompiled only when its version changes, so a change made in the
 * Management API applies within `refreshMs` without a restart, and an unchanged one costs one small read. When
 * a refetch fails, the last good value keeps serving (logged); with none, the batch fails and is redelivered.
 * An invalid new config version is refused the same way: the previous version stays in force.
 */
export function createDataLayerDirectory(options: DataLayerDirectoryOptions): DataLayerDirectory {
  const { logger, metrics, refreshMs } = options;
  const now = options.now ?? Date.now;
  const layers = new Map<string, Entry<CompiledDataLayer>>();
  const lists = new Map<string, Entry<readonly CompiledIntegration[]>>();

  function cached<T>(
    map: Map<string, Entry<T>>,
    key: string,
    load: (previous: T | undefined) => Promise<T>,
    what: string,
  ): Promise<T> {
    let entry = map.get(key);
    if (entry === undefined) {
      entry = { value: undefined, fetchedAt: 0, loading: undefined };
      map.set(key, entry);
    }
    const current = entry;
    if (current.value !== undefined && now() - current.fetchedAt < refreshMs)
      return Promise.resolve(current.value);
    current.loading ??= load(current.value)
      .then((value) => {
        current.value = value;
        current.fetchedAt = now();
        return value;
      })
      .catch((err: unknown) => {
        if (current.value === undefined) {
          throw new SourceUnavailableError(`${what} could not be loaded`, { cause: err });
        }
        // Serve the last good value for another period rather than hammering a failing source.
        current.fetchedAt = now();
        logger.warn({ err: describe(err), what }, 'refresh failed; keeping the last good configuration');
        return current.value;
      })
      .finally(() => {
        current.loading = undefined;
      });
    return current.loading;
  }

  return {
    dataLayer: (orgId) =>
      cached(
        layers,
        orgId,
        async (previous) => {
          const raw = await options.dataLayers.getConfig(orgId);
          const version = (raw as { version?: unknown }).version;
          if (previous !== undefined && version === previous.version) return previous;
          try {
            const compiled = compileDataLayer(raw, options.compile);
            metrics.configReload('compiled');
            logger.info({ org: orgId, version: compiled.version }, 'Org Data Layer compiled');
            return compiled;
          } catch (err) {
            metrics.configReload('failed');
            logger.error({ org: orgId, version, err: describe(err) }, 'Org Data Layer config refused');
            throw err;
          }
        },
        'the Org Data Layer config',
      ),
    integrations: (pipelineId) =>
      cached(
        lists,
        pipelineId,
        async () => {
          const raw = await options.integrations.listIntegrations(pipelineId);
          const out: CompiledIntegration[] = [];
          for (const item of raw) {
            const parsed = integrationSchema.safeParse(item);
            if (!parsed.success) {
              logger.error(
                {
                  pipelineId,
                  integration: typeof item.id === 'string' ? item.id : '?',
                  issues: parsed.error.issues.length,
                },
                'integration config refused; events are not routed to it',
              );
              continue;
            }
            const { pipeline, ...rest } = parsed.data;
            out.push({ ...rest, pipeline: compilePipeline(pipeline) });
          }
          return Object.freeze(out);
        },
        'the integration list',
      ),
  };
}

function describe(err: unknown): { type: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { type: err.name, code, message: err.message }
      : { type: err.name, message: err.message };
  }
  return { type: typeof err, message: 'non-error thrown' };
}
