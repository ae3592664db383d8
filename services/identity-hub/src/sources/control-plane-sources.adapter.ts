import type { ControlPlane } from '@signal/control-plane';
import type { LinkedDomainSource, PipelineResolver } from '../ports';

export interface HubSources {
  readonly pipelines: PipelineResolver;
  readonly linkedDomains: LinkedDomainSource;
}

/**
 * The production implementation of the hub's pipeline ports, over the control plane. Used by the
 * standalone hub and by the all-in-one. A disabled pipeline's key opens nothing.
 */
export function controlPlaneHubSources(
  controlPlane: Pick<ControlPlane, 'findPipelineByKey' | 'linkedDomains'>,
): HubSources {
  return {
    pipelines: {
      byKey: async (key) => {
        const found = await controlPlane.findPipelineByKey(key);
        return found?.enabled ? { orgId: found.orgId, pipelineId: found.pipelineId } : null;
      },
    },
    linkedDomains: { linkedDomains: (pipelineId) => controlPlane.linkedDomains(pipelineId) },
  };
}
