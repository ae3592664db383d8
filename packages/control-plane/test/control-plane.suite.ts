import { randomBytes } from 'node:crypto';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { isStoreError, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlane,
  ControlPlaneError,
  controlPlaneMigrations,
  countRecordsByKeyId,
  countRecordsPendingReencryption,
  countRecordsUnderKey,
  createControlPlane,
  createScryptHasher,
  ensureDemoOrg,
  ONE_TIME_PASSWORD_TTL_MS,
  PIPELINE_KEY_PATTERN,
} from '../src/index';
import type { DbTarget } from './db-targets';

/** Cheap scrypt for tests only (the production default is N = 2^15). */
export const testHasher = () => createScryptHasher({ cost: { N: 2 ** 10, r: 8, p: 1 } });

export function testCrypto(current: Buffer = randomBytes(32), previous?: Buffer): CryptoService {
  return createCryptoService({ keyring: createKeyring({ current, previous }) });
}

function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
  };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error('expected a refusal, but the operation succeeded');
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await refusal(promise);
  if (error instanceof ControlPlaneError) return error.code;
  if (isStoreError(error)) return `store:${error.code}`;
  return (error as { code?: string }).code ?? error.name;
}

const PASSWORD = 'correct horse battery staple';

export function describeControlPlaneSuite(target: DbTarget, skip = false): void {
  describe.skipIf(skip)(`control plane on ${target.name}`, () => {
    beforeAll(() => target.setup());
    afterAll(() => target.teardown());

    async function fresh(options: { crypto?: CryptoService; clock?: () => Date } = {}) {
      const db = await target.fresh(controlPlaneMigrations);
      const crypto = options.crypto ?? testCrypto();
      const cp = createControlPlane({
        db,
        crypto,
        hasher: testHasher(),
        ...(options.clock ? { clock: options.clock } : {}),
      });
      return { db, crypto, cp };
    }

    async function orgWithOwner(cp: ControlPlane, slug = `org-${randomBytes(3).toString('hex')}`) {
      return cp.orgs.createWithOwner({
        name: 'Acme',
        slug,
        owner: { email: `Owner@${slug}.example`, password: PASSWORD },
      });
    }

    describe('orgs and users', () => {
      it('creates an org together with exactly one owner, email lower-cased', async () => {
        const { db, cp } = await fresh();
        const { org, owner } = await orgWithOwner(cp, 'acme');
        expect(owner).toMatchObject({ orgId: org.id, role: 'owner', email: 'owner@acme.example' });
        expect(await cp.users.owner(db, org.id)).toEqual(owner);
        expect(await codeOf(orgWithOwner(cp, 'acme'))).toBe('conflict');
        expect(
          await codeOf(cp.users.invite(org.id, { email: 'x@acme.example', role: 'owner' as never })),
        ).toBe('invalid_input');
      });

      it('refuses a second owner in the repository and in the database itself', async () => {
        const { db, cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        expect(
          await codeOf(
            db.transaction((tx) =>
              cp.users.insert(tx, org.id, { email: 'two@x.example', role: 'owner', password: PASSWORD }),
            ),
          ),
        ).toBe('owner_required');
        const admin = await db.transaction((tx) =>
          cp.users.insert(tx, org.id, { email: 'admin@x.example', role: 'admin', password: PASSWORD }),
        );
        // Bypassing the repository: the partial unique index still holds.
        const error = await refusal(db.query("UPDATE users SET role = 'owner' WHERE id = $1", [admin.id]));
        expect(isStoreError(error) && error.code).toBe('conflict');
      });

      it('keeps emails unique per org, not across orgs', async () => {
        const { db, cp } = await fresh();
        const a = await orgWithOwner(cp);
        const b = await orgWithOwner(cp);
        const add = (orgId: string) =>
          db.transaction((tx) =>
            cp.users.insert(tx, orgId, { email: 'Same@Example.com', role: 'viewer', password: PASSWORD }),
          );
        await add(a.org.id);
        await add(b.org.id);
        expect(await codeOf(add(a.org.id))).toBe('conflict');
        expect(await codeOf(cp.users.invite(a.org.id, { email: 'same@example.com', role: 'editor' }))).toBe(
          'conflict',
        );
        expect(await cp.users.findForLogin('SAME@example.com')).toHaveLength(2);
        expect(await cp.users.findForLogin('same@example.com', b.org.slug)).toEqual([
          expect.objectContaining({ orgId: b.org.id }),
        ]);
      });

      it('never demotes or removes the owner; transfer swaps roles atomically and voids both users’ tokens', async () => {
        const { cp } = await fresh();
        const { org, owner } = await orgWithOwner(cp);
        const { user: admin } = await cp.users.invite(org.id, { email: 'admin@x.example', role: 'admin' });
        expect(await codeOf(cp.users.changeRole(org.id, owner.id, 'admin'))).toBe('owner_required');
        expect(await codeOf(cp.users.changeRole(org.id, admin.id, 'owner'))).toBe('owner_required');
        expect(await codeOf(cp.users.remove(org.id, owner.id))).toBe('owner_required');
        expect(await codeOf(cp.users.transferOwnership(org.id, admin.id, owner.id))).toBe('owner_required');

        const changes = await cp.users.transferOwnership(org.id, owner.id, admin.id);
        expect(changes.map((c) => [c.before.role, c.after.role])).toEqual([
          ['owner', 'admin'],
          ['admin', 'owner'],
        ]);
        expect((await cp.users.get(org.id, admin.id))?.role).toBe('owner');
        expect((await cp.users.authRecord(owner.id))?.tokensValidAfter).toBeInstanceOf(Date);
        expect((await cp.users.authRecord(admin.id))?.tokensValidAfter).toBeInstanceOf(Date);
        // The former owner is now an ordinary admin: removable.
        await cp.users.remove(org.id, owner.id);
        expect(await cp.users.get(org.id, owner.id)).toBeNull();
      });

      it('changes roles, revoking access tokens at once, and hides other orgs’ users', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const other = await orgWithOwner(cp);
        const { user } = await cp.users.invite(org.id, { email: 'ed@x.example', role: 'editor' });
        const { before, after } = await cp.users.changeRole(org.id, user.id, 'viewer');
        expect([before.role, after.role]).toEqual(['editor', 'viewer']);
        expect((await cp.users.authRecord(user.id))?.tokensValidAfter).toBeInstanceOf(Date);
        expect(await cp.users.get(other.org.id, user.id)).toBeNull();
        expect(await codeOf(cp.users.changeRole(other.org.id, user.id, 'admin'))).toBe('not_found');
        expect(await codeOf(cp.users.remove(other.org.id, user.id))).toBe('not_found');
      });

      it('invites with a one-time password that must be changed', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const { user, oneTimePassword } = await cp.users.invite(org.id, {
          email: 'new@x.example',
          role: 'viewer',
        });
        expect(user.mustChangePassword).toBe(true);
        const record = await cp.users.authRecord(user.id);
        expect(record?.passwordHash).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$/);
        expect(record?.passwordHash).not.toContain(oneTimePassword);
        expect(await cp.hasher.verify(oneTimePassword, record?.passwordHash ?? '')).toBe(true);
        await cp.users.setPassword(user.id, 'a brand new long password');
        const after = await cp.users.authRecord(user.id);
        expect(after?.mustChangePassword).toBe(false);
        expect(await cp.hasher.verify(oneTimePassword, after?.passwordHash ?? '')).toBe(false);
        expect(await codeOf(cp.users.setPassword(user.id, 'short'))).toBe('invalid_input');
      });
    });

    describe('pipelines, keys and HMAC secrets', () => {
      it('creates a pipeline with a key and an HMAC secret shown once and stored only as digest / ciphertext', async () => {
        const { db, cp, crypto } = await fresh();
        const { org } = await orgWithOwner(cp);
        const made = await cp.pipelines.create(org.id, {
          name: 'Shop Web',
          type: 'web',
          allowed_domains: ['Shop.Example.com', '*.example.com', 'shop.example.com'],
          linked_domains: ['a.example', 'b.example:8443'],
        });
        expect(made.key).toMatch(PIPELINE_KEY_PATTERN);
        expect(made.key.startsWith('dk_live_')).toBe(true);
        expect(made.hmacSecret).toMatch(/^[0-9a-f]{64}$/);
        expect(made.pipeline).toMatchObject({
          slug: 'shop-web',
          enabled: true,
          allowedDomains: ['shop.example.com', '*.example.com'],
          linkedDomains: ['a.example', 'b.example:8443'],
          rateLimitRps: null,
        });
        const dump = JSON.stringify(
          (await db.query('SELECT * FROM pipeline_keys')).rows.concat(
            (await db.query('SELECT * FROM pipeline_secrets')).rows,
          ),
        );
        expect(dump).not.toContain(made.key);
        expect(dump).not.toContain(made.hmacSecret);
        const { rows } = await db.query<{ secret: string; key_id: string }>(
          'SELECT secret, key_id FROM pipeline_secrets',
        );
        expect(rows[0]?.secret.startsWith('v1.')).toBe(true);
        expect(rows[0]?.key_id).toBe(crypto.keyring.currentKeyId);

        const found = await cp.findPipelineByKey(made.key);
        expect(found).toEqual({
          orgId: org.id,
          pipelineId: made.pipeline.id,
          type: 'web',
          enabled: true,
          keyStatus: 'active',
          allowedDomains: ['shop.example.com', '*.example.com'],
          rateLimitRps: null,
          hmacSecrets: [Buffer.from(made.hmacSecret, 'utf8')],
          validUntil: null,
        });
        // Change the last character to one it is not (a key ending in 'x' once made `…x` the same key).
        const tampered = `${made.key.slice(0, -1)}${made.key.endsWith('x') ? 'y' : 'x'}`;
        expect(tampered).not.toBe(made.key);
        expect(await cp.findPipelineByKey(tampered)).toBeNull();
        expect(await cp.findPipelineByKey('dk_live_short')).toBeNull();
        expect(await cp.linkedDomains(made.pipeline.id)).toEqual(['a.example', 'b.example:8443']);
        expect(await cp.linkedDomains('pl_unknown')).toEqual([]);
      });

      it('validates input and slugs', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        await cp.pipelines.create(org.id, { name: 'A', slug: 'same', type: 'server' });
        expect(await codeOf(cp.pipelines.create(org.id, { name: 'B', slug: 'same', type: 'web' }))).toBe(
          'conflict',
        );
        expect(
          await codeOf(
            cp.pipelines.create(org.id, { name: 'C', type: 'web', linked_domains: ['*.x.example'] }),
          ),
        ).toBe('invalid_input');
        expect(
          await codeOf(
            cp.pipelines.create(org.id, { name: 'C', type: 'web', allowed_domains: ['http://x'] }),
          ),
        ).toBe('invalid_input');
        expect(await codeOf(cp.pipelines.create(org.id, { name: 'C', type: 'desktop' as never }))).toBe(
          'invalid_input',
        );
        expect(await codeOf(cp.pipelines.create('org_missing', { name: 'C', type: 'web' }))).toBe(
          'not_found',
        );
      });

      it('updates only given fields and keeps other orgs out', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const other = await orgWithOwner(cp);
        const { pipeline } = await cp.pipelines.create(org.id, {
          name: 'P',
          type: 'web',
          rate_limit_rps: 50,
          allowed_domains: ['a.example'],
          linked_domains: ['shop.example'],
        });
        expect(await cp.linkedDomains(pipeline.id)).toEqual(['shop.example']);
        const { before, after } = await cp.pipelines.update(org.id, pipeline.id, {
          enabled: false,
          rate_limit_rps: null,
        });
        expect(before).toMatchObject({ enabled: true, rateLimitRps: 50 });
        // A disabled pipeline links no domain: the identity hub neither mints nor redeems its tokens.
        expect(await cp.linkedDomains(pipeline.id)).toEqual([]);
        expect(after).toMatchObject({ enabled: false, rateLimitRps: null, allowedDomains: ['a.example'] });
        expect(await codeOf(cp.pipelines.update(org.id, pipeline.id, {}))).toBe('invalid_input');
        expect(await codeOf(cp.pipelines.update(other.org.id, pipeline.id, { name: 'x' }))).toBe('not_found');
        expect(await cp.pipelines.get(other.org.id, pipeline.id)).toBeNull();
        expect(await codeOf(cp.pipelines.delete(other.org.id, pipeline.id))).toBe('not_found');
        await cp.pipelines.delete(org.id, pipeline.id);
        expect(await cp.pipelines.get(org.id, pipeline.id)).toBeNull();
      });

      it('rotates keys with a grace window; revocation ends the grace now', async () => {
        const clock = manualClock();
        const { cp } = await fresh({ clock: clock.now });
        const { org } = await orgWithOwner(cp);
        const made = await cp.pipelines.create(org.id, { name: 'P', type: 'web', key_environment: 'test' });
        expect(made.key.startsWith('dk_test_')).toBe(true);
        const first = await cp.pipelines.rotateKey(org.id, made.pipeline.id, { grace_seconds: 3600 });
        expect(first.key.startsWith('dk_test_')).toBe(true);
        expect(first.previous).toMatchObject({ id: made.keyInfo.id, status: 'grace' });
        expect((await cp.findPipelineByKey(made.key))?.keyStatus).toBe('grace');
        expect((await cp.findPipelineByKey(first.key))?.keyStatus).toBe('active');
        // Caches keep the answer for the old key no longer than its grace (the new key's never expires).
        expect((await cp.findPipelineByKey(made.key))?.validUntil).toBe(clock.now().getTime() + 3600_000);
        expect((await cp.findPipelineByKey(first.key))?.validUntil).toBeNull();

        clock.advance(3600_001);
        expect(await cp.findPipelineByKey(made.key)).toBeNull();
        expect((await cp.findPipelineByKey(first.key))?.keyStatus).toBe('active');

        const second = await cp.pipelines.rotateKey(org.id, made.pipeline.id);
        expect(second.previous.graceEndsAt?.getTime()).toBe(clock.now().getTime() + 72 * 3600_000);
        expect((await cp.findPipelineByKey(first.key))?.keyStatus).toBe('grace');
        expect(await codeOf(cp.pipelines.revokeKey(org.id, made.pipeline.id, second.keyInfo.id))).toBe(
          'invalid_input',
        );
        const revoked = await cp.pipelines.revokeKey(org.id, made.pipeline.id, first.keyInfo.id);
        expect(revoked.status).toBe('retired');
        expect(await cp.findPipelineByKey(first.key)).toBeNull();
        const keys = await cp.pipelines.listKeys(org.id, made.pipeline.id);
        expect(keys.map((k) => k.status)).toEqual(['active', 'retired', 'retired']);
        expect(JSON.stringify(keys)).not.toContain(second.key);
      });

      it('rotates HMAC secrets: current first, then the previous one until its grace ends', async () => {
        const clock = manualClock();
        const { cp } = await fresh({ clock: clock.now });
        const { org } = await orgWithOwner(cp);
        const made = await cp.pipelines.create(org.id, { name: 'Server', type: 'server' });
        const rotated = await cp.pipelines.rotateSecret(org.id, made.pipeline.id, { grace_seconds: 60 });
        expect(rotated.hmacSecret).not.toBe(made.hmacSecret);
        expect((await cp.findPipelineByKey(made.key))?.hmacSecrets).toEqual([
          Buffer.from(rotated.hmacSecret),
          Buffer.from(made.hmacSecret),
        ]);
        clock.advance(61_000);
        expect((await cp.findPipelineByKey(made.key))?.hmacSecrets).toEqual([
          Buffer.from(rotated.hmacSecret),
        ]);
        expect(
          await codeOf(cp.pipelines.rotateSecret(org.id, made.pipeline.id, { grace_seconds: 31 * 86_400 })),
        ).toBe('invalid_input');
      });

      it('leaves out a secret that does not decrypt (fail closed) and reads legacy plaintext', async () => {
        const { db, cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const made = await cp.pipelines.create(org.id, { name: 'S', type: 'server' });
        const rotated = await cp.pipelines.rotateSecret(org.id, made.pipeline.id);
        // Plant the current secret's ciphertext into the previous secret's row: its context no longer matches.
        await db.query(
          `UPDATE pipeline_secrets SET secret = (SELECT secret FROM pipeline_secrets WHERE grace_ends_at IS NULL)
            WHERE grace_ends_at IS NOT NULL`,
        );
        expect((await cp.findPipelineByKey(made.key))?.hmacSecrets).toEqual([
          Buffer.from(rotated.hmacSecret),
        ]);
        await db.query(
          "UPDATE pipeline_secrets SET secret = 'legacy-plaintext', key_id = NULL WHERE grace_ends_at IS NOT NULL",
        );
        expect((await cp.findPipelineByKey(made.key))?.hmacSecrets).toEqual([
          Buffer.from(rotated.hmacSecret),
          Buffer.from('legacy-plaintext'),
        ]);
      });

      it('pages with opaque keyset cursors, never skipping or repeating', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const created: string[] = [];
        for (let i = 0; i < 5; i++) {
          created.push((await cp.pipelines.create(org.id, { name: `P${i}`, type: 'web' })).pipeline.id);
        }
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await cp.pipelines.list(org.id, { limit: 2, cursor });
          seen.push(...page.data.map((p) => p.id));
          expect(page.hasMore).toBe(page.nextCursor !== null);
          cursor = page.nextCursor;
          pages++;
          if (pages === 1) await cp.pipelines.create(org.id, { name: 'late', type: 'web' });
        } while (cursor !== null);
        expect(seen.slice(0, 5)).toEqual(created);
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen).toHaveLength(6);
        expect(await codeOf(cp.pipelines.list(org.id, { cursor: 'bm9wZQ' }))).toBe('invalid_input');
        expect(await codeOf(cp.pipelines.list(org.id, { limit: 101 }))).toBe('invalid_input');
        expect((await cp.pipelines.list(org.id, {})).data).toHaveLength(6);
      });
    });

    describe('integrations', () => {
      const credentials = { access_token: 'EAAB-very-secret-token-1a2b', pixel_secret: 'short' };

      it('stores credentials encrypted, reads them masked, decrypts them only on request', async () => {
        const { db, cp, crypto } = await fresh();
        const { org } = await orgWithOwner(cp);
        const { pipeline } = await cp.pipelines.create(org.id, { name: 'P', type: 'web' });
        const integration = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'meta',
          name: 'Meta CAPI',
          settings: { pixel_id: '123456' },
          credentials,
        });
        expect(integration.credentialsMasked).toEqual({ access_token: '••••1a2b', pixel_secret: '••••' });
        expect(integration.consent.category).toBe('marketing');
        const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM integrations');
        expect(JSON.stringify(rows)).not.toContain('very-secret');
        expect(rows[0]?.credentials_key_id).toBe(crypto.keyring.currentKeyId);
        expect(await cp.getIntegrationCredentials(integration.id)).toEqual(credentials);
        expect(await cp.listIntegrations(pipeline.id)).toEqual([integration]);
        expect(await cp.getIntegrationCredentials('int_missing')).toBeNull();
      });

      it('binds ciphertexts to their row: a copy into another integration does not open', async () => {
        const { db, cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const { pipeline } = await cp.pipelines.create(org.id, { name: 'P', type: 'web' });
        const a = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'ga4',
          name: 'A',
          credentials,
        });
        const b = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'ga4',
          name: 'B',
          credentials: { api_secret: 'another-secret-value-zzzz' },
        });
        await db.query(
          'UPDATE integrations SET credentials = (SELECT credentials FROM integrations WHERE id = $1) WHERE id = $2',
          [a.id, b.id],
        );
        expect(await codeOf(cp.getIntegrationCredentials(b.id))).toBe('commitment_mismatch');
      });

      it('validates vendor, consent and settings; updates and clears credentials', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const other = await orgWithOwner(cp);
        const { pipeline } = await cp.pipelines.create(org.id, { name: 'P', type: 'web' });
        expect(
          await codeOf(cp.integrations.create(org.id, pipeline.id, { vendor: 'acme_crm', name: 'x' })),
        ).toBe('invalid_input');
        expect(
          await codeOf(
            cp.integrations.create(org.id, pipeline.id, {
              vendor: 'meta',
              name: 'x',
              settings: { api_secret: 'oops' },
            }),
          ),
        ).toBe('invalid_input');
        expect(
          await codeOf(cp.integrations.create(other.org.id, pipeline.id, { vendor: 'meta', name: 'x' })),
        ).toBe('not_found');
        const made = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'acme_crm',
          name: 'CRM',
          consent: { category: 'functional' },
          credentials,
        });
        const { before, after } = await cp.integrations.update(org.id, made.id, {
          enabled: false,
          credentials: { token: 'rotated-credential-value-9z9z' },
        });
        expect(before.credentialsMasked).toEqual({ access_token: '••••1a2b', pixel_secret: '••••' });
        expect(after).toMatchObject({ enabled: false, credentialsMasked: { token: '••••9z9z' } });
        expect(await cp.getIntegrationCredentials(made.id)).toEqual({
          token: 'rotated-credential-value-9z9z',
        });
        const cleared = await cp.integrations.update(org.id, made.id, { credentials: null });
        expect(cleared.after.credentialsMasked).toBeNull();
        expect(await cp.getIntegrationCredentials(made.id)).toBeNull();
        expect(await codeOf(cp.integrations.update(other.org.id, made.id, { enabled: true }))).toBe(
          'not_found',
        );
        await cp.integrations.delete(org.id, made.id);
        expect(await cp.integrations.get(org.id, made.id)).toBeNull();
      });
    });

    describe('Org Data Layer', () => {
      it('starts at version 0 with defaults, bumps the version on every save, refuses stale writers', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const initial = await cp.getDataLayerConfig(org.id);
        expect(initial).toMatchObject({ version: 0, routing_rules: [], updated_at: null });
        expect(initial.pii_rules.enabled).toBe(true);
        const { after } = await cp.dataLayer.put(
          org.id,
          {
            pii_rules: { hash_fields: ['traits.email'], redact_fields: ['context.ip'] },
            bot_filtering: { ip_ranges: ['203.0.113.0/24'] },
            routing_rules: [{ name: 'no pageviews to meta', integrations: ['meta'], action: 'exclude' }],
            expected_version: 0,
          },
          'usr_x',
        );
        expect(after.version).toBe(1);
        expect(after.pii_rules.hash_fields).toEqual([{ field: 'traits.email' }]);
        expect(after.routing_rules[0]).toMatchObject({ enabled: true, when: {} });
        expect(await cp.getDataLayerConfig(org.id)).toEqual(after);
        expect(await codeOf(cp.dataLayer.put(org.id, { expected_version: 0 }, null))).toBe(
          'version_mismatch',
        );
        expect((await cp.dataLayer.put(org.id, {}, null)).after.version).toBe(2);
        expect(await codeOf(cp.dataLayer.put(org.id, { pii_rules: { hash_fields: ['a..b'] } }, null))).toBe(
          'invalid_input',
        );
        expect(await codeOf(cp.dataLayer.put(org.id, { bot_filtering: { ip_ranges: ['nope'] } }, null))).toBe(
          'invalid_input',
        );
      });
    });

    describe('the shared Org Data Layer schema (@signal/org-data-layer)', () => {
      it('stores every setting the processor implements: routing conditions, bot threshold/action/signals', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const condition = {
          all: [
            { field: 'context.provenance', op: 'neq', value: 'hmac' },
            { field: 'properties.value', op: 'exists' },
          ],
        };
        const { after } = await cp.dataLayer.put(
          org.id,
          {
            bot_filtering: { threshold: 30, action: 'flag', browser_signals: false },
            routing_rules: [
              { name: 'browser only to meta', integrations: ['meta'], action: 'drop', condition },
            ],
          },
          null,
        );
        expect(after.bot_filtering).toEqual({
          enabled: true,
          known_bots: true,
          user_agent_patterns: [],
          ip_ranges: [],
          browser_signals: false,
          threshold: 30,
          action: 'flag',
        });
        // Aliases are stored in their canonical spelling; the condition round-trips unchanged.
        expect(after.routing_rules[0]).toMatchObject({ action: 'exclude', condition });
        expect(await cp.getDataLayerConfig(org.id)).toEqual(after);
      });

      it('refuses unknown settings and bad conditions, naming the field', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const message = async (input: Parameters<typeof cp.dataLayer.put>[1]) =>
          (await refusal(cp.dataLayer.put(org.id, input, null))).message;
        expect(await message({ bot_filtering: { threshold: 0 } })).toMatch(/bot_filtering\.threshold/);
        expect(await message({ bot_filtering: { action: 'block' } as never })).toMatch(
          /bot_filtering\.action/,
        );
        expect(await message({ bot_filtering: { treshold: 30 } as never })).toMatch(
          /bot_filtering.*treshold/,
        );
        expect(
          await message({
            routing_rules: [
              { name: 'r', action: 'exclude', condition: { field: 'a.__proto__', op: 'exists' } },
            ],
          }),
        ).toMatch(/routing_rules\.0\.condition/);
        expect((await cp.getDataLayerConfig(org.id)).version).toBe(0);
      });

      it('reads a row saved before the processor settings existed with the defaults the processor used', async () => {
        const { db, cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        await cp.dataLayer.put(org.id, {}, null);
        // The shape the control plane wrote before the schemas were unified.
        await db.query(`UPDATE data_layer_configs SET bot_filtering = $2::jsonb WHERE org_id = $1`, [
          org.id,
          JSON.stringify({ enabled: true, known_bots: true, user_agent_patterns: [], ip_ranges: [] }),
        ]);
        expect((await cp.getDataLayerConfig(org.id)).bot_filtering).toMatchObject({
          browser_signals: true,
          threshold: 50,
          action: 'drop',
        });
      });

      it('stores, replaces and clears an integration pipeline; refuses writes outside properties/traits/event', async () => {
        const { cp } = await fresh();
        const { org } = await orgWithOwner(cp);
        const { pipeline } = await cp.pipelines.create(org.id, { name: 'P', type: 'web' });
        const steps = [
          {
            type: 'map' as const,
            rename: { 'properties.sku': 'properties.product_id' },
            set: {},
            remove: [] as string[],
          },
          { type: 'filter' as const, condition: { field: 'properties.value', op: 'exists' as const } },
        ];
        const made = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'webhook',
          name: 'Hook',
          consent: { category: 'analytics' },
          pipeline: steps,
        });
        expect(made.pipeline).toEqual(steps);
        expect((await cp.listIntegrations(pipeline.id))[0]?.pipeline).toEqual(steps);
        const plain = await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'webhook',
          name: 'Plain',
          consent: { category: 'analytics' },
        });
        expect(plain.pipeline).toEqual([]);
        const renamed = await cp.integrations.update(org.id, made.id, { name: 'Renamed' });
        expect(renamed.after.pipeline).toEqual(steps);
        const cleared = await cp.integrations.update(org.id, made.id, { pipeline: [] });
        expect(cleared.before.pipeline).toEqual(steps);
        expect(cleared.after.pipeline).toEqual([]);
        const forged = await refusal(
          cp.integrations.update(org.id, made.id, {
            pipeline: [{ type: 'map', set: { 'context.provenance': 'hmac' } }],
          }),
        );
        expect(forged).toMatchObject({ code: 'invalid_input' });
        expect(forged.message).toMatch(/pipeline\.0\.set/);
      });

      it('migration 0002 gives integrations that existed before it an empty pipeline', async () => {
        const db = await target.fresh(controlPlaneMigrations.slice(0, 1));
        const old = createControlPlane({ db, crypto: testCrypto(), hasher: testHasher() });
        // The org by hand: today's users repository reads columns later migrations add.
        const org = { id: `org_${'0'.repeat(12)}${randomBytes(8).toString('hex')}` };
        await db.query(
          `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, 'Old', $2, now(), now())`,
          [org.id, `old-${randomBytes(4).toString('hex')}`],
        );
        const { pipeline } = await old.pipelines.create(org.id, { name: 'P', type: 'web' });
        await db.query(
          `INSERT INTO integrations (id, pipeline_id, vendor, name, enabled, settings, consent, created_at, updated_at)
           VALUES ('int_before_0002', $1, 'webhook', 'Old', true, '{}', '{"category":"analytics"}', now(), now())`,
          [pipeline.id],
        );
        await migrate(db, controlPlaneMigrations);
        const cp = createControlPlane({ db, crypto: testCrypto(), hasher: testHasher() });
        expect(await cp.listIntegrations(pipeline.id)).toMatchObject([
          { id: 'int_before_0002', pipeline: [] },
        ]);
      });
    });

    describe('one-time password expiry', () => {
      it('an invitation can be used to log in for 72 hours; choosing a password ends the expiry', async () => {
        let now = Date.now();
        const { cp } = await fresh({ clock: () => new Date(now) });
        const { org, owner } = await orgWithOwner(cp);
        const { user } = await cp.users.invite(org.id, { email: 'new@x.example', role: 'viewer' });
        const record = await cp.users.authRecord(user.id);
        expect(record?.passwordExpiresAt?.getTime()).toBe(now + ONE_TIME_PASSWORD_TTL_MS);
        expect(record?.passwordExpired).toBe(false);
        expect((await cp.users.authRecord(owner.id))?.passwordExpiresAt).toBeNull();
        now += ONE_TIME_PASSWORD_TTL_MS;
        expect((await cp.users.findForLogin('new@x.example'))[0]?.passwordExpired).toBe(true);
        expect((await cp.users.findForLogin(owner.email))[0]?.passwordExpired).toBe(false);
        await cp.users.setPassword(user.id, 'a brand new long password');
        expect(await cp.users.authRecord(user.id)).toMatchObject({
          passwordExpiresAt: null,
          passwordExpired: false,
        });
      });

      it('migration 0003 gives invitations still open a full 72 hours from the upgrade', async () => {
        const db = await target.fresh(controlPlaneMigrations.slice(0, 2));
        const orgId = `org_${'0'.repeat(12)}${randomBytes(8).toString('hex')}`;
        await db.query(
          `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, 'Old', $2, now(), now())`,
          [orgId, `old-${randomBytes(4).toString('hex')}`],
        );
        for (const [id, invited] of [
          ['usr_invited', true],
          ['usr_chosen', false],
        ] as const) {
          await db.query(
            `INSERT INTO users (id, org_id, email, role, password_hash, must_change_password, created_at, updated_at)
             VALUES ($1, $2, $3, 'viewer', 'x', $4, now() - interval '30 days', now() - interval '30 days')`,
            [id, orgId, `${id}@x.example`, invited],
          );
        }
        await migrate(db, controlPlaneMigrations);
        const cp = createControlPlane({ db, crypto: testCrypto(), hasher: testHasher() });
        const invited = await cp.users.authRecord('usr_invited');
        expect(invited?.passwordExpired).toBe(false);
        expect(invited?.passwordExpiresAt?.getTime()).toBeGreaterThan(
          Date.now() + ONE_TIME_PASSWORD_TTL_MS - 60_000,
        );
        expect((await cp.users.authRecord('usr_chosen'))?.passwordExpiresAt).toBeNull();
      });
    });

    describe('refresh tokens', () => {
      it('rotates; reusing a rotated token revokes every token of the user', async () => {
        const { cp } = await fresh();
        const { org, owner } = await orgWithOwner(cp);
        const first = await cp.refreshTokens.issue(owner.id, {
          ttlSeconds: 3600,
          sessionMaxAgeSeconds: 86_400,
        });
        const other = await cp.refreshTokens.issue(owner.id, {
          ttlSeconds: 3600,
          sessionMaxAgeSeconds: 86_400,
        });
        const rotated = await cp.refreshTokens.rotate(first.token, 3600);
        expect(rotated.kind).toBe('rotated');
        if (rotated.kind !== 'rotated') return;
        expect(rotated.next.familyId).toBe(first.familyId);

        const reuse = await cp.refreshTokens.rotate(first.token, 3600);
        expect(reuse).toEqual({ kind: 'reused', userId: owner.id, familyId: first.familyId });
        expect(await cp.refreshTokens.rotate(rotated.next.token, 3600)).toEqual({ kind: 'invalid' });
        expect(await cp.refreshTokens.rotate(other.token, 3600)).toEqual({ kind: 'invalid' });
        expect((await cp.users.authRecord(owner.id))?.tokensValidAfter).toBeInstanceOf(Date);
        expect(org.id).toBeTruthy();
      });

      it('ends a login at its absolute lifetime however often it is refreshed', async () => {
        const clock = manualClock();
        const { cp } = await fresh({ clock: clock.now });
        const { owner } = await orgWithOwner(cp);
        const start = clock.now().getTime();
        let token = await cp.refreshTokens.issue(owner.id, {
          ttlSeconds: 3600,
          sessionMaxAgeSeconds: 4 * 3600,
        });
        expect(token.sessionExpiresAt.getTime()).toBe(start + 4 * 3600_000);
        // Refreshed every 50 minutes, well within the TTL: each token lives an hour, until the login's end.
        for (let i = 1; i <= 4; i++) {
          clock.advance(50 * 60_000);
          const outcome = await cp.refreshTokens.rotate(token.token, 3600);
          if (outcome.kind !== 'rotated') throw new Error(`refresh ${i} refused: ${outcome.kind}`);
          token = outcome.next;
          expect(token.expiresAt.getTime()).toBe(
            Math.min(clock.now().getTime() + 3600_000, start + 4 * 3600_000),
          );
        }
        clock.advance(40 * 60_000 + 1); // 4 h 0 min 0.001 s after sign-in
        expect(await cp.refreshTokens.rotate(token.token, 3600)).toEqual({ kind: 'invalid' });
      });

      it('accepts tokens written by the previous release during a rolling upgrade (no session end given)', async () => {
        const { cp, db } = await fresh();
        const { owner } = await orgWithOwner(cp);
        // What the previous release inserts: no session_expires_at column, a 90-day token at most.
        await db.query(
          `INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, issued_at, expires_at)
           VALUES ('rt_old', $1, 'fam_old', $2, now(), now() + interval '90 days')`,
          [owner.id, 'a'.repeat(64)],
        );
        const { rows } = await db.query<{ capped: boolean }>(
          `SELECT session_expires_at <= now() + interval '90 days' + interval '1 minute' AS capped
             FROM refresh_tokens WHERE id = 'rt_old'`,
        );
        expect(rows).toEqual([{ capped: true }]);
      });

      it('refuses expired and unknown tokens; logout revokes the family', async () => {
        const clock = manualClock();
        const { cp } = await fresh({ clock: clock.now });
        const { owner } = await orgWithOwner(cp);
        const token = await cp.refreshTokens.issue(owner.id, {
          ttlSeconds: 60,
          sessionMaxAgeSeconds: 86_400,
        });
        clock.advance(60_001);
        expect(await cp.refreshTokens.rotate(token.token, 60)).toEqual({ kind: 'invalid' });
        expect(await cp.refreshTokens.rotate('x'.repeat(43), 60)).toEqual({ kind: 'invalid' });
        expect(await cp.refreshTokens.rotate('not a token', 60)).toEqual({ kind: 'invalid' });
        const live = await cp.refreshTokens.issue(owner.id, { ttlSeconds: 60, sessionMaxAgeSeconds: 86_400 });
        expect(await cp.refreshTokens.revokeFamily('usr_other', live.token)).toBe(false);
        expect(await cp.refreshTokens.revokeFamily(owner.id, live.token)).toBe(true);
        expect(await cp.refreshTokens.rotate(live.token, 60)).toEqual({ kind: 'invalid' });
      });
    });

    describe('demo seed', () => {
      it('is idempotent: the second start finds everything and shows no secret again', async () => {
        const { db, cp } = await fresh();
        const first = await ensureDemoOrg(cp, db, { adminEmail: 'admin@signal.localhost' });
        expect(first.created).toBe(true);
        expect(first.generatedAdminPassword).toMatch(/^[0-9A-Za-z]{24}$/);
        expect(first.admin.role).toBe('owner');
        expect(first.pipeline.linkedDomains).toEqual(['site-a.localhost', 'site-b.localhost']);
        expect(first.pipelineKey).toMatch(/^dk_test_/);
        const found = await cp.findPipelineByKey(first.pipelineKey ?? '');
        expect(found?.hmacSecrets).toEqual([Buffer.from(first.hmacSecret ?? '')]);

        const second = await ensureDemoOrg(cp, db, { adminEmail: 'admin@signal.localhost' });
        expect(second).toMatchObject({
          created: false,
          generatedAdminPassword: null,
          pipelineKey: null,
          hmacSecret: null,
        });
        expect(second.org.id).toBe(first.org.id);
        expect(second.pipeline.id).toBe(first.pipeline.id);

        const reissued = await ensureDemoOrg(cp, db, {
          adminEmail: 'admin@signal.localhost',
          reissueCredentials: true,
        });
        expect(await cp.findPipelineByKey(first.pipelineKey ?? '')).toBeNull();
        expect((await cp.findPipelineByKey(reissued.pipelineKey ?? ''))?.pipelineId).toBe(first.pipeline.id);
      });

      it('uses a given admin password and never returns it', async () => {
        const { db, cp } = await fresh();
        const demo = await ensureDemoOrg(cp, db, {
          adminEmail: 'Admin@Example.com',
          adminPassword: 'given password 123',
        });
        expect(demo.generatedAdminPassword).toBeNull();
        const record = await cp.users.authRecord(demo.admin.id);
        expect(await cp.hasher.verify('given password 123', record?.passwordHash ?? '')).toBe(true);
      });
    });

    describe('encrypted column registry', () => {
      it('counts records per key id, under a key, and pending re-encryption', async () => {
        const keyA = randomBytes(32);
        const keyB = randomBytes(32);
        const { db, cp, crypto: cryptoA } = await fresh({ crypto: testCrypto(keyA) });
        const { org } = await orgWithOwner(cp);
        const { pipeline, key, hmacSecret } = await cp.pipelines.create(org.id, { name: 'P', type: 'web' });
        await cp.integrations.create(org.id, pipeline.id, {
          vendor: 'meta',
          name: 'M',
          credentials: { a: 'b' },
        });
        await cp.integrations.create(org.id, pipeline.id, { vendor: 'meta', name: 'No creds' });
        const cryptoB = testCrypto(keyB, keyA);
        const cpB = createControlPlane({ db, crypto: cryptoB, hasher: testHasher() });
        await cpB.pipelines.create(org.id, { name: 'Q', type: 'server' });
        await db.query(
          `INSERT INTO pipeline_secrets (id, pipeline_id, secret, key_id, created_at, grace_ends_at)
           VALUES ('ps_legacy', $1, 'plain', NULL, now(), now())`,
          [pipeline.id],
        );
        const a = cryptoA.keyring.currentKeyId;
        const b = cryptoB.keyring.currentKeyId;
        expect(Object.fromEntries(await countRecordsByKeyId(db))).toEqual({ [a]: 2, [b]: 1, null: 1 });
        expect(await countRecordsUnderKey(db, a)).toBe(2);
        expect(await countRecordsPendingReencryption(db, b)).toBe(3);
        // B's control plane opens A's ciphertexts (dual-key mode).
        expect((await cpB.findPipelineByKey(key))?.hmacSecrets).toEqual([Buffer.from(hmacSecret)]);
      });
    });
  });
}
