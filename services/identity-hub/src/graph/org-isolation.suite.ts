import { createHmac, randomBytes } from 'node:crypto';
import { auditMigrations, createAuditLog } from '@signal/audit';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import type { Database } from '@signal/store';
import { migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { anonymousId, orgId, rawEvent, recordingLogger } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { INDEX_KEY_ID, loadBlindIndex } from './blind-index';
import type { GraphDbTarget } from './db-targets';
import { identifierContext, indexKeyContext, traitsContext } from './encrypted-columns';
import { createIdentityErasure } from './erasure';
import { createIdentityGraph, ERASURE_CLOCK_MARGIN_MS, type IdentityGraph } from './identity-graph';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const minutes = (n: number) => new Date(T0 + n * 60_000).toISOString();
const MINUTE = 60_000;

const profileRow = z.object({ org_id: z.string() });

/**
 * Tenant isolation of the identity graph: every read, write and erasure is scoped to one org. Two orgs that
 * both have a user "42" (or the same email as user id, or the same anonymous id) have two people, never one.
 */
export function describeOrgIsolation(target: GraphDbTarget, skip = false): void {
  describe.skipIf(skip)(`identity graph org isolation on ${target.name}`, () => {
    let db: Database;
    let crypto: CryptoService;
    let graph: IdentityGraph;
    const clock = { now: T0 };

    beforeAll(async () => {
      db = await target.fresh([...auditMigrations, ...identityHubMigrations]);
      crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
      graph = createIdentityGraph({
        db,
        crypto,
        index: await loadBlindIndex(db, crypto),
        now: () => clock.now,
      });
    });
    afterAll(async () => {
      await target.close();
    });

    const everything = { consent: true, kinds: ['user_id', 'anonymous_id', 'fbp'], traits: true } as const;

    it('the same user id (or email) in two orgs makes two profiles, each with its own traits and rows', async () => {
      for (const user of ['42', 'jane.doe@example.com']) {
        const [a, b] = [orgId(), orgId()];
        const [anonA, anonB] = [anonymousId(), anonymousId()];
        const inA = await graph.ingest(
          rawEvent({ org: a, anonymousId: anonA, userId: user, traits: { email: user, plan: 'a-only' } }),
        );
        const inB = await graph.ingest(
          rawEvent({ org: b, anonymousId: anonB, userId: user, traits: { plan: 'b' } }),
        );
        expect(inA.profileId).not.toBeNull();
        expect(inB).toMatchObject({ merged: [], moved: false });
        expect(inB.profileId).not.toBe(inA.profileId);

        expect(await graph.lookup(a, { userId: user }, everything)).toEqual({
          profileId: inA.profileId,
          identifiers: { user_id: user, anonymous_id: anonA },
          traits: { email: user, plan: 'a-only' },
        });
        expect(await graph.lookup(b, { userId: user }, everything)).toEqual({
          profileId: inB.profileId,
          identifiers: { user_id: user, anonymous_id: anonB },
          traits: { plan: 'b' },
        });

        // Each row carries its org; the two user ids have different digests (the org is part of the digest).
        for (const [org, profileId] of [
          [a, inA.profileId],
          [b, inB.profileId],
        ] as const) {
          for (const table of ['identity_profiles', 'identity_identifiers', 'identity_traits']) {
            const column = table === 'identity_profiles' ? 'id' : 'profile_id';
            const { rows } = await db.query(`SELECT org_id FROM ${table} WHERE ${column} = $1`, [profileId]);
            expect(rows.length, table).toBeGreaterThan(0);
            for (const row of rows) expect(profileRow.parse(row).org_id, table).toBe(org);
          }
        }
        const { rows } = await db.query(
          "SELECT DISTINCT digest FROM identity_identifiers WHERE profile_id = ANY($1::text[]) AND kind = 'user_id'",
          [[inA.profileId, inB.profileId]],
        );
        expect(rows).toHaveLength(2);
      }
    });

    it("org B's lookup never returns org A's person, traits or ids", async () => {
      const [a, b] = [orgId(), orgId()];
      const [anon, user] = [anonymousId(), `user-${randomBytes(4).toString('hex')}`];
      await graph.ingest(
        rawEvent({
          org: a,
          anonymousId: anon,
          userId: user,
          traits: { email: 'secret@a.example' },
          clickIds: { fbp: 'fb.1.1700000000000.1' },
        }),
      );
      expect(await graph.lookup(b, { userId: user }, everything)).toBeNull();
      expect(await graph.lookup(b, { anonymousId: anon }, everything)).toBeNull();
      expect(await graph.lookup(b, { anonymousId: anon, userId: user }, everything)).toBeNull();

      // The same anonymous id seen by org B (the same visitor on org B's site) is org B's visitor only.
      const inB = await graph.ingest(rawEvent({ org: b, anonymousId: anon }));
      const found = await graph.lookup(b, { anonymousId: anon, userId: user }, everything);
      expect(found).toEqual({ profileId: inB.profileId, identifiers: { anonymous_id: anon } });
      expect(JSON.stringify(found)).not.toContain('secret@a.example');
      expect(
        await graph.canonicalProfileId(
          b,
          (await graph.lookup(a, { userId: user }, everything))?.profileId ?? '',
        ),
      ).toBeNull();
    });

    it("an identify in org B neither merges nor moves org A's profiles", async () => {
      const [a, b] = [orgId(), orgId()];
      const anon = anonymousId();
      const [u, v] = [`u-${randomBytes(4).toString('hex')}`, `v-${randomBytes(4).toString('hex')}`];
      const inA = await graph.ingest(
        rawEvent({ org: a, anonymousId: anon, userId: u, traits: { who: 'a' } }),
      );
      // Org B sees the same browser identify as someone else, and as the same user id.
      const other = await graph.ingest(rawEvent({ org: b, anonymousId: anon, userId: v }));
      expect(other).toMatchObject({ merged: [], moved: false });
      const same = await graph.ingest(rawEvent({ org: b, anonymousId: anonymousId(), userId: u }));
      expect(same.merged).toEqual([]);
      expect(await graph.lookup(a, { anonymousId: anon }, everything)).toEqual({
        profileId: inA.profileId,
        identifiers: { user_id: u, anonymous_id: anon },
        traits: { who: 'a' },
      });
      expect(await graph.lookup(b, { userId: u }, everything)).not.toMatchObject({
        profileId: inA.profileId,
      });
    });

    it("org B's erasure of org A's person erases nothing and looks exactly like erasing an unknown id", async () => {
      const [a, b] = [orgId(), orgId()];
      const [anon, user] = [anonymousId(), `erase-${randomBytes(4).toString('hex')}@example.com`];
      await graph.ingest(
        rawEvent({
          org: a,
          anonymousId: anon,
          userId: user,
          traits: { email: user },
          receivedAt: minutes(0),
        }),
      );
      clock.now = T0 + 10 * MINUTE;
      const audit = createAuditLog({ db, logger: recordingLogger() });
      const erasure = createIdentityErasure({ graph, audit, logger: recordingLogger() });
      const actor = { user_id: 'usr_admin_b' };

      const zeros = { profiles: 0, identifiers: 0, traits: 0 };
      expect(await erasure.eraseSubject(b, user, actor)).toEqual(zeros);
      expect(await erasure.eraseSubject(b, anon, actor)).toEqual(zeros);
      expect(await erasure.eraseSubject(b, `nobody-${randomBytes(4).toString('hex')}`, actor)).toEqual(zeros);
      expect(await graph.lookup(a, { userId: user }, everything)).toMatchObject({
        identifiers: { user_id: user, anonymous_id: anon },
        traits: { email: user },
      });
      // Org A's person's events received before org B's erasure still apply: it recorded nothing for org A.
      expect((await graph.ingest(rawEvent({ org: a, userId: user, receivedAt: minutes(1) }))).dropped).toBe(
        undefined,
      );
      const { rows } = await db.query('SELECT count(*)::int AS n FROM identity_erasures WHERE org_id = $1', [
        a,
      ]);
      expect(rows[0]?.n).toBe(0);

      // Org A's own erasure takes its person, and only its person.
      await graph.ingest(rawEvent({ org: b, userId: user, traits: { email: 'b@b.example' } }));
      expect(await erasure.eraseSubject(a, user, { user_id: 'usr_admin_a' })).toMatchObject({ profiles: 1 });
      expect(await graph.lookup(a, { userId: user }, everything)).toBeNull();
      expect(await graph.lookup(b, { userId: user }, everything)).toMatchObject({
        traits: { email: 'b@b.example' },
      });
    });

    it('erasure records are per org: org A erasing "42" does not drop org B\'s events of its "42"', async () => {
      const [a, b] = [orgId(), orgId()];
      const user = `42-${randomBytes(4).toString('hex')}`;
      const [anonA, anonB] = [anonymousId(), anonymousId()];
      const eventA = rawEvent({ org: a, anonymousId: anonA, userId: user, receivedAt: minutes(0) });
      const eventB = rawEvent({ org: b, anonymousId: anonB, userId: user, receivedAt: minutes(0) });
      clock.now = T0;
      await graph.ingest(eventA);
      clock.now = T0 + 10 * MINUTE;
      expect(await graph.erase(a, user)).toMatchObject({ profiles: 1 });

      // Received before org A's erasure, delivered after it: org A's is dropped, org B's is applied.
      expect((await graph.ingest(eventA)).dropped).toBe('erased');
      const applied = await graph.ingest(eventB);
      expect(applied.dropped).toBeUndefined();
      expect(applied.profileId).not.toBeNull();
      expect(await graph.lookup(b, { userId: user }, everything)).toMatchObject({
        identifiers: { user_id: user, anonymous_id: anonB },
      });

      const records = async (org: string) =>
        (await db.query('SELECT count(*)::int AS n FROM identity_erasures WHERE org_id = $1', [org])).rows[0]
          ?.n;
      // The subject as user id and as anonymous id, and the anonymous id of its profile.
      expect(await records(a)).toBe(3);
      expect(await records(b)).toBe(0);
    });

    it('seals traits and identifier values bound to their org as well as their row', async () => {
      const [a, b] = [orgId(), orgId()];
      const { profileId } = await graph.ingest(
        rawEvent({ org: a, anonymousId: anonymousId(), traits: { plan: 'x' }, type: 'identify' }),
      );
      const traits = await db.query<{ traits: string }>(
        'SELECT traits FROM identity_traits WHERE profile_id = $1',
        [profileId],
      );
      const sealed = traits.rows[0]?.traits ?? '';
      expect(crypto.openText(sealed, traitsContext(profileId ?? '', a)).toString('utf8')).toContain('plan');
      expect(() => crypto.openText(sealed, traitsContext(profileId ?? '', b))).toThrow(
        expect.objectContaining({ code: 'commitment_mismatch' }),
      );
      const ids = await db.query<{ id: string; kind: string; value: string }>(
        'SELECT id, kind, value FROM identity_identifiers WHERE profile_id = $1',
        [profileId],
      );
      expect(ids.rows.length).toBeGreaterThan(0);
      for (const row of ids.rows) {
        expect(() => crypto.openText(row.value, identifierContext(row.id, row.kind, a))).not.toThrow();
        expect(() => crypto.openText(row.value, identifierContext(row.id, row.kind, b))).toThrow(
          expect.objectContaining({ code: 'commitment_mismatch' }),
        );
      }
    });

    it('refuses a lookup or an erasure without a usable org', async () => {
      await expect(graph.lookup('', { userId: 'x' }, everything)).rejects.toMatchObject({
        code: 'invalid_subject',
      });
      await expect(graph.erase('', 'x')).rejects.toMatchObject({ code: 'invalid_subject' });
      await expect(graph.erase('org with spaces', 'x')).rejects.toMatchObject({ code: 'invalid_subject' });
    });

    describe('upgrading a graph written before identity-hub/0003', () => {
      const before = identityHubMigrations.filter(
        (m) => m.id === 'identity-hub/0001_identity' || m.id === 'identity-hub/0002_identity_erasures',
      );

      it('drops the org-less profiles, and honours the org-less erasure records in every org until they expire', async () => {
        expect(before).toHaveLength(2);
        const old = await target.fresh([...auditMigrations, ...before]);
        const key = randomBytes(32);
        const oldCrypto = createCryptoService({ keyring: createKeyring({ current: key }) });
        await loadBlindIndex(old, oldCrypto);
        const { rows } = await old.query<{ secret: string }>(
          'SELECT secret FROM identity_index_keys WHERE id = $1',
          [INDEX_KEY_ID],
        );
        const indexKey = oldCrypto.openText(rows[0]?.secret ?? '', indexKeyContext(INDEX_KEY_ID));
        // The digests as the graph computed them before 0003: HMAC(index key, kind ‖ 0 ‖ value), no org.
        const v1 = (kind: string, value: string) =>
          createHmac('sha256', indexKey)
            .update(kind, 'utf8')
            .update('\0')
            .update(value, 'utf8')
            .digest('hex');
        const erasedUser = `legacy-${randomBytes(4).toString('hex')}@example.com`;
        const erasedAt = new Date(T0 + 60 * MINUTE);
        const expiresAt = new Date(erasedAt.getTime() + 30 * 24 * 60 * MINUTE);
        await old.query(
          `INSERT INTO identity_erasures (kind, digest, erased_at, expires_at) VALUES ('user_id', $1, $2, $3)`,
          [v1('erased:user_id', v1('user_id', erasedUser)), erasedAt, expiresAt],
        );
        // A profile of the old shape: no org, so nobody can tell whose person it is.
        await old.query(
          "INSERT INTO identity_profiles (id, created_at, updated_at) VALUES ('prf_legacy', now(), now())",
        );
        await old.query(
          `INSERT INTO identity_identifiers (id, profile_id, kind, digest, value, value_key_id, first_seen_at, last_seen_at)
           VALUES ('idn_legacy', 'prf_legacy', 'user_id', $1, 'v1.legacy', 'k', now(), now())`,
          [v1('user_id', 'someone')],
        );
        await old.query(
          "INSERT INTO identity_traits (profile_id, traits, traits_key_id, updated_at) VALUES ('prf_legacy', 'v1.legacy', 'k', now())",
        );

        await migrate(old, [...auditMigrations, ...identityHubMigrations]);
        for (const table of ['identity_profiles', 'identity_identifiers', 'identity_traits']) {
          const { rows: left } = await old.query(`SELECT count(*)::int AS n FROM ${table}`);
          expect(left[0]?.n, table).toBe(0);
        }

        const upgradedClock = { now: erasedAt.getTime() };
        const upgraded = createIdentityGraph({
          db: old,
          crypto: oldCrypto,
          index: await loadBlindIndex(old, oldCrypto),
          now: () => upgradedClock.now,
        });
        const [a, b] = [orgId(), orgId()];
        // Received before the old erasure: dropped in every org (the record cannot say whose it was).
        const earlier = (org: string) =>
          rawEvent({ org, anonymousId: anonymousId(), userId: erasedUser, receivedAt: minutes(30) });
        expect((await upgraded.ingest(earlier(a))).dropped).toBe('erased');
        expect((await upgraded.ingest(earlier(b))).dropped).toBe('erased');
        // Received after it: a new person of that org.
        const later = new Date(erasedAt.getTime() + ERASURE_CLOCK_MARGIN_MS + MINUTE).toISOString();
        const signUp = await upgraded.ingest(rawEvent({ org: a, userId: erasedUser, receivedAt: later }));
        expect(signUp.dropped).toBeUndefined();
        expect(signUp.profileId).not.toBeNull();

        // The old records expire like the new ones, and then no longer drop anything.
        upgradedClock.now = expiresAt.getTime();
        expect(await upgraded.purgeErasureRecords()).toBeGreaterThanOrEqual(1);
        const { rows: legacyLeft } = await old.query(
          'SELECT count(*)::int AS n FROM identity_erasures_legacy',
        );
        expect(legacyLeft[0]?.n).toBe(0);
        expect((await upgraded.ingest(earlier(b))).dropped).toBeUndefined();
      });
    });
  });
}
