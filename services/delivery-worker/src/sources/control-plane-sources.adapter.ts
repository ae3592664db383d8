import type { DeliveryControlPlaneReader } from '@signal/control-plane';
import type { CredentialSource, WorkerIntegrationSource } from '../ports';

export interface WorkerSources {
  readonly integrations: WorkerIntegrationSource;
  readonly credentials: CredentialSource;
}

/**
 * The production implementation of the worker's ports, over the control plane. Used by the standalone
 * worker and by the all-in-one. Credentials are decrypted by the control plane and kept in memory only.
 */
export function controlPlaneWorkerSources(controlPlane: DeliveryControlPlaneReader): WorkerSources {
  return {
    integrations: {
      async getIntegration(id) {
        const found = await controlPlane.getIntegration(id);
        if (!found) return null;
        // A private endpoint's CA is an integration setting for Signal, not a vendor parameter.
        const { extraCaPem, ...settings } = found.settings;
        return {
          id: found.id,
          vendor: found.vendor,
          enabled: found.enabled,
          settings,
          consent: found.consent,
          ...(typeof extraCaPem === 'string' ? { extraCaPem } : {}),
        };
      },
      listIntegrationIds: () => controlPlane.listIntegrationIds(),
    },
    credentials: { getCredentials: (id) => controlPlane.getIntegrationCredentials(id) },
  };
}
