import type { ProcessorControlPlaneReader } from '@signal/control-plane';
import { orgDataLayerConfigSchema } from '../org-data-layer/config';
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
      // The control plane's stored form, validated at this boundary with the processor's own schema.
      getConfig: async (orgId) =>
        orgDataLayerConfigSchema.parse(await controlPlane.getDataLayerConfig(orgId)),
    },
    integrations: {
      listIntegrations: async (pipelineId) =>
        (await controlPlane.listIntegrations(pipelineId)).map((i) => ({
          id: i.id,
          vendor: i.vendor,
          enabled: i.enabled,
          consent: i.consent,
        })),
    },
  };
}
