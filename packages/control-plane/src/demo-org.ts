import type { Queryable } from '@signal/store';
import type { ControlPlane } from './control-plane';
import { ControlPlaneError, isControlPlaneError } from './errors';
import type { Org } from './orgs.repository';
import type { Pipeline } from './pipelines.repository';
import { newOneTimePassword } from './secrets';
import type { User } from './users.repository';
import { emailSchema, parseInput } from './validation';

export interface DemoOrgOptions {
  /** The demo org's owner (`SIGNAL_BOOTSTRAP_ADMIN_EMAIL`). */
  readonly adminEmail: string;
  /** `SIGNAL_BOOTSTRAP_ADMIN_PASSWORD`; generated (and returned once) when absent. */
  readonly adminPassword?: string | undefined;
  readonly orgName?: string;
  readonly orgSlug?: string;
  readonly pipelineName?: string;
  readonly pipelineSlug?: string;
  readonly linkedDomains?: readonly string[];
  readonly allowedDomains?: readonly string[];
  /**
   * When the demo pipeline already exists its key and secret cannot be shown again (only digests and
   * ciphertexts are stored). With this flag they are rotated with no grace and the new ones returned.
   */
  readonly reissueCredentials?: boolean;
}

export interface DemoOrg {
  /** True when this call created the org (first start). */
  readonly created: boolean;
  readonly org: Org;
  readonly admin: User;
  /** The admin password when this call generated it; null otherwise (never stored in plaintext). */
  readonly generatedAdminPassword: string | null;
  readonly pipeline: Pipeline;
  /** Shown once: set when the pipeline was created or its credentials reissued. */
  readonly pipelineKey: string | null;
  readonly hmacSecret: string | null;
}

const DEMO_DOMAINS = ['site-a.localhost', 'site-b.localhost'];

/**
 * Seeds the embedded all-in-one: an org, its owner, and a demo web pipeline with a key, an HMAC secret and
 * the linked domains `site-a.localhost` / `site-b.localhost`. Idempotent: a second start finds them (and
 * recreates only what was deleted). Runs in one transaction; a concurrent first start by another process is
 * retried once.
 */
export async function ensureDemoOrg(
  controlPlane: ControlPlane,
  db: { transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> },
  options: DemoOrgOptions,
): Promise<DemoOrg> {
  try {
    return await db.transaction((tx) => ensure(controlPlane, tx, options));
  } catch (error) {
    if (isControlPlaneError(error) && error.code === 'conflict') {
      return db.transaction((tx) => ensure(controlPlane, tx, options));
    }
    throw error;
  }
}

async function ensure(cp: ControlPlane, tx: Queryable, options: DemoOrgOptions): Promise<DemoOrg> {
  const email = parseInput(emailSchema, options.adminEmail, 'admin email');
  const orgSlug = options.orgSlug ?? 'demo';
  const pipelineSlug = options.pipelineSlug ?? 'demo-site';

  let created = false;
  let generatedAdminPassword: string | null = null;
  let org = await cp.orgs.getBySlug(tx, orgSlug);
  let admin: User;
  if (org === null) {
    const password = options.adminPassword ?? newOneTimePassword();
    if (options.adminPassword === undefined) generatedAdminPassword = password;
    const made = await cp.orgs.insertWithOwner(tx, {
      name: options.orgName ?? 'Demo',
      slug: orgSlug,
      owner: { email, name: 'Admin', password },
    });
    org = made.org;
    admin = made.owner;
    created = true;
  } else {
    const owner = await cp.users.owner(tx, org.id);
    if (owner === null) throw new ControlPlaneError('corrupt_row', 'the demo org has no owner');
    admin = owner;
  }

  const existing = await cp.pipelines.getBySlug(tx, org.id, pipelineSlug);
  if (existing === null) {
    const made = await cp.pipelines.insert(tx, org.id, {
      name: options.pipelineName ?? 'Demo site',
      slug: pipelineSlug,
      type: 'web',
      allowed_domains: [...(options.allowedDomains ?? DEMO_DOMAINS)],
      linked_domains: [...(options.linkedDomains ?? DEMO_DOMAINS)],
      key_environment: 'test',
    });
    return {
      created,
      org,
      admin,
      generatedAdminPassword,
      pipeline: made.pipeline,
      pipelineKey: made.key,
      hmacSecret: made.hmacSecret,
    };
  }
  if (options.reissueCredentials === true) {
    const key = await cp.pipelines.rotateKeyIn(tx, org.id, existing.id, { grace_seconds: 0 });
    const secret = await cp.pipelines.rotateSecretIn(tx, org.id, existing.id, { grace_seconds: 0 });
    return {
      created,
      org,
      admin,
      generatedAdminPassword,
      pipeline: existing,
      pipelineKey: key.key,
      hmacSecret: secret.hmacSecret,
    };
  }
  return {
    created,
    org,
    admin,
    generatedAdminPassword,
    pipeline: existing,
    pipelineKey: null,
    hmacSecret: null,
  };
}
