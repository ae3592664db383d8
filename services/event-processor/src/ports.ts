import type { ConsentRequirement } from '@signal/consent';
import type { OrgDataLayerConfigInput, PipelineStepInput } from '@signal/org-data-layer';

/**
 * What the processor reads, as ports it owns (STYLE §4): the control plane implements them in production,
 * tests use typed in-memory implementations. Results are validated with the processor's own schemas.
 */

/** The org's Org Data Layer configuration, with the version that goes up on every change. */
export interface OrgDataLayerSource {
  getConfig(orgId: string): Promise<OrgDataLayerConfigInput>;
}

/** An integration as the processor sees it: where events go, what consent they need, its pipeline. */
export interface ProcessorIntegrationInput {
  readonly id: string;
  /** Vendor adapter id (`meta`, `ga4`, `webhook`, …); routing rules may name it. */
  readonly vendor: string;
  readonly enabled: boolean;
  readonly consent: ConsentRequirement;
  readonly pipeline?: readonly PipelineStepInput[];
}

export interface IntegrationSource {
  /** Every integration of the pipeline (enabled or not). */
  listIntegrations(pipelineId: string): Promise<readonly ProcessorIntegrationInput[]>;
}

/** The slice of a pino-compatible logger the processor uses. It never logs event values or PII. */
export interface ProcessorLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
