import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type ControlPlane, ensureDemoOrg, type Integration } from '@signal/control-plane';
import { createSecretFile } from '@signal/runtime';
import type { Database } from '@signal/store';
import type { VendorSink } from './vendor-sink';

export interface DemoSetup {
  readonly orgId: string;
  readonly pipelineId: string;
  /** Public (it is embedded in the demo page), so it may live in the data directory. */
  readonly pipelineKey: string;
  readonly adminEmail: string;
  /** Only on the first start, when it was generated. */
  readonly generatedAdminPassword: string | null;
  /** Only when the pipeline was created or its credentials reissued: server sources need it. */
  readonly hmacSecret: string | null;
  readonly integrations: readonly Integration[];
}

const DEMO_KEY_FILE = 'demo-pipeline-key';
/** The demo page is served from this process; the two site names are the Identity Hub's linked domains. */
const DEMO_DOMAINS = ['localhost', 'site-a.localhost', 'site-b.localhost'];
const DEMO_WEBHOOK_SECRET_FILE = 'demo-webhook-signing-secret';

/** The file's text, or null when it is missing or empty (a write that never completed). */
function readFileIfPresent(path: string): string | null {
  const text = existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  return text === '' ? null : text;
}

/** Replaces `path` (missing, empty or stale) with `content`, durably. */
function replaceSecretFile(path: string, content: string): void {
  rmSync(path, { force: true });
  if (!createSecretFile(path, content)) throw new Error(`${path} was created by another process meanwhile`);
}

/**
 * Seeds the embedded deployment on first start (org, admin, pipeline, a webhook and a Meta integration
 * pointed at the local vendor sink) and, on every start, points the two integrations at this run's sink
 * (its port and CA are new each time). Idempotent.
 */
export async function setUpDemo(options: {
  readonly controlPlane: ControlPlane;
  readonly db: Database;
  readonly dataDir: string;
  readonly adminEmail: string;
  readonly adminPassword: string | undefined;
  readonly sink: VendorSink;
  readonly webhookSigningSecret: string;
}): Promise<DemoSetup> {
  const { controlPlane, dataDir, sink } = options;
  mkdirSync(dataDir, { recursive: true });
  const keyPath = join(dataDir, DEMO_KEY_FILE);
  const knownKey = readFileIfPresent(keyPath);
  const demo = await ensureDemoOrg(controlPlane, options.db, {
    adminEmail: options.adminEmail,
    adminPassword: options.adminPassword,
    allowedDomains: DEMO_DOMAINS,
    linkedDomains: ['site-a.localhost', 'site-b.localhost'],
    // The key is shown only when created; if this data directory lost its copy, issue a new one.
    reissueCredentials: knownKey === null,
  });
  const pipelineKey = demo.pipelineKey ?? knownKey;
  if (pipelineKey === null)
    throw new Error('the demo pipeline key is unknown; delete the data directory to reseed');
  if (demo.pipelineKey !== null) replaceSecretFile(keyPath, `${demo.pipelineKey}\n`);

  const orgId = demo.org.id;
  const pipelineId = demo.pipeline.id;
  const existing = await controlPlane.listIntegrations(pipelineId);
  const wanted = [
    {
      vendor: 'webhook',
      name: 'Demo webhook (local HTTPS sink)',
      settings: { url: `${sink.url}/webhook`, extraCaPem: sink.caPem },
      credentials: { signingSecret: options.webhookSigningSecret },
    },
    {
      vendor: 'meta',
      name: 'Demo Meta CAPI (local HTTPS sink)',
      settings: { pixelId: '1234567890', endpoint: sink.url, extraCaPem: sink.caPem },
      credentials: { accessToken: 'demo-access-token-not-a-real-one' },
    },
  ] as const;
  for (const spec of wanted) {
    const found = existing.find((i) => i.name === spec.name);
    if (found) {
      // Settings change every start (the sink's port and CA). A new destination takes its credentials in
      // the same write (the control plane refuses to point stored ones elsewhere), and a lost webhook secret,
      // generated again, must reach the integration too.
      await controlPlane.integrations.update(orgId, found.id, {
        settings: { ...spec.settings },
        credentials: { ...spec.credentials },
      });
    } else {
      await controlPlane.integrations.create(orgId, pipelineId, {
        vendor: spec.vendor,
        name: spec.name,
        settings: { ...spec.settings },
        credentials: { ...spec.credentials },
      });
    }
  }
  return {
    orgId,
    pipelineId,
    pipelineKey,
    adminEmail: demo.admin.email,
    generatedAdminPassword: demo.generatedAdminPassword,
    hmacSecret: demo.hmacSecret,
    integrations: await controlPlane.listIntegrations(pipelineId),
  };
}

/** A per-data-directory signing secret for the demo webhook (the sink verifies it). */
export function demoWebhookSecret(dataDir: string, generate: () => string): string {
  const path = join(dataDir, DEMO_WEBHOOK_SECRET_FILE);
  const known = readFileIfPresent(path);
  if (known) return known;
  const secret = generate();
  replaceSecretFile(path, `${secret}\n`);
  return secret;
}
