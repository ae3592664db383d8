import { randomBytes } from 'node:crypto';
import { type ControlPlane, createControlPlane, ensureDemoOrg } from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import type { TestDeployment } from './deployment';

export interface SeededPipeline {
  /** The deployment's control plane, with the same ENCRYPTION_KEY as its services. */
  readonly controlPlane: ControlPlane;
  readonly orgId: string;
  readonly pipelineId: string;
  readonly pipelineKey: string;
}

/**
 * An org, its owner and a web pipeline, written through the control plane straight into the deployment's
 * database, sealed with the deployment's key (what the Management API would do; here without HTTP).
 */
export async function seedPipeline(deployment: TestDeployment): Promise<SeededPipeline> {
  const crypto = createCryptoService({
    keyring: createKeyring({ current: Buffer.from(deployment.encryptionKey, 'hex') }),
  });
  const controlPlane = createControlPlane({ db: deployment.db, crypto });
  const demo = await ensureDemoOrg(controlPlane, deployment.db, {
    adminEmail: 'owner@services.test',
    adminPassword: randomBytes(18).toString('base64url'),
    orgSlug: `org-${randomBytes(4).toString('hex')}`,
    allowedDomains: ['shop.example'],
  });
  if (demo.pipelineKey === null) throw new Error('the seeded pipeline has no key');
  return {
    controlPlane,
    orgId: demo.org.id,
    pipelineId: demo.pipeline.id,
    pipelineKey: demo.pipelineKey,
  };
}
