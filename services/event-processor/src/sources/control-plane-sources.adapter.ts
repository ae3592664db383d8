import type { ProcessorControlPlaneReader } from '@signal/control-plane';
import { orgDataLayerConfigSchema } from '@signal/org-data-layer';
import type { IntegrationSource, OrgDataLayerSource } from '../ports';

export interface ProcessorSources {
  readonly dataLayers: OrgDataLayerSource;
  readonly integrations: IntegrationSource;
}

/**
 * The production implementation of the processor's two ports, over the control plane. Used by the
 * standalone processor and by the all-in-one, so both read configuration the same way.
 */
export function controlPlaneProcessorSources(controlPlane: ProcessorControlPlaneReader): ProcessorSources {
  return {
    dataLayers: {
      // The control plane validated the row with the same shared (strict) schema; only the contract's fields
      // are passed on (not its bookkeeping, `updated_at`/`updated_by`), and checked again at this boundary:
      // once per refresh, not per event.
      getConfig: async (orgId) => {
        const { version, pii_rules, bot_filtering, routing_rules } =
          await controlPlane.getDataLayerConfig(orgId);
        return orgDataLayerConfigSchema.parse({ version, pii_rules, bot_filtering, routing_rules });
      },
    },
    integrations: {
      listIntegrations: async (pipelineId) =>
        (await controlPlane.listIntegrations(pipelineId)).map((i) => ({
          id: i.id,
          vendor: i.vendor,
          enabled: i.enabled,
          consent: i.consent,
          pipeline: i.pipeline,
        })),
    },
  };
}
