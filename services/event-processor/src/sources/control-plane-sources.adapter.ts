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
      // The control plane validated the row with the same shared schema; this boundary checks it again
      // (once per refresh, not per event) because the port promises a valid config.
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
          pipeline: i.pipeline,
        })),
    },
  };
}
