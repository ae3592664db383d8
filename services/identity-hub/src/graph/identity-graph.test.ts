import { createHash, randomBytes } from 'node:crypto';
import { auditMigrations, createAuditLog } from '@signal/audit';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousId, DEMO_PIPELINE, rawEvent, recordingLogger } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { loadBlindIndex } from './blind-index';
import { IDENTITY_ENCRYPTED_COLUMNS } from './encrypted-columns';
import { createIdentityErasure } from './erasure';
import {
  createIdentityGraph,
  ERASURE_RECORD_RETENTION_MS,
  type IdentityGraph,
  MIN_ERASURE_RECORD_RETENTION_MS,
} from './identity-graph';

/** The org of every event `rawEvent` makes (the demo pipeline's). */
const ORG = DEMO_PIPELINE.orgId;

const KEY = randomBytes(32);
let db: Database;
let crypto: CryptoService;
let graph: IdentityGraph;

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, [...auditMigrations, ...identityHubMigrations]);
  crypto = createCryptoService({ keyring: createKeyring({ current: KEY }) });
  graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
});
afterAll(async () => {
  await db.close();
});

function at(minutes: number): string {
  return new Date(Date.parse('2026-03-01T12:00:00Z') + minutes * 60_000).toISOString();
}

function userId(): string {
  return `user-${randomBytes(6).toString('hex')}`;
}

async function profileOf(subject: { anonymousId?: string; userId?: string }): Promise<string | null> {
  return (await graph.lookup(ORG, subject, { consent: true, kinds: [] }))?.profileId ?? null;
}

async function dumpIdentityTables(): Promise<string> {
  const parts: string[] = [];
  for (const table of [
    'identity_profiles',
    'identity_identifiers',
    'identity_traits',
    'identity_index_keys',
  ]) {
    const { rows } = await db.query(`SELECT t::text AS row FROM ${table} t`);
    parts.push(...rows.map((r) => String(r.row)));
  }
  return parts.join('\n');
}

describe('linking', () => {
  it('gives each anonymous visitor a profile, and every later event of theirs finds it', async () => {
    const a = anonymousId();
    const first = await graph.ingest(rawEvent({ anonymousId: a, receivedAt: at(0) }));
    const again = await graph.ingest(rawEvent({ anonymousId: a, receivedAt: at(1) }));
    expect(first.profileId).toMatch(/^prf_[0-9a-f]{32}$/);
    expect(again).toEqual({ profileId: first.profileId, merged: [], moved: false });
    expect(await graph.ingest(rawEvent({ anonymousId: anonymousId() }))).not.toMatchObject({
      profileId: first.profileId,
    });
  });

  it('links an anonymous id to the user id of an identify call', async () => {
    const a = anonymousId();
    const u = userId();
    const before = await graph.ingest(rawEvent({ anonymousId: a, receivedAt: at(0) }));
    const after = await graph.ingest(rawEvent({ anonymousId: a, userId: u, receivedAt: at(1) }));
    expect(after.profileId).toBe(before.profileId);
    expect(await profileOf({ userId: u })).toBe(before.profileId);
  });

  it('merges when one user id appears with several anonymous ids: the older profile wins, the other points at it', async () => {
    const [a1, a2, a3] = [anonymousId(), anonymousId(), anonymousId()];
    const u = userId();
    const p1 = (await graph.ingest(rawEvent({ anonymousId: a1, receivedAt: at(0) }))).profileId;
    const p2 = (await graph.ingest(rawEvent({ anonymousId: a2, receivedAt: at(5) }))).profileId;
    await graph.ingest(rawEvent({ anonymousId: a2, userId: u, receivedAt: at(6) }));
    const merged = await graph.ingest(rawEvent({ anonymousId: a1, userId: u, receivedAt: at(7) }));
    expect(merged).toEqual({ profileId: p1, merged: [p2], moved: false });
    await graph.ingest(rawEvent({ anonymousId: a3, userId: u, receivedAt: at(8) }));
    for (const subject of [{ anonymousId: a1 }, { anonymousId: a2 }, { anonymousId: a3 }, { userId: u }]) {
      expect(await profileOf(subject)).toBe(p1);
    }
    expect(await graph.canonicalProfileId(ORG, p2 ?? '')).toBe(p1);
    expect(await graph.canonicalProfileId(ORG, p1 ?? '')).toBe(p1);
    expect(await graph.canonicalProfileId(ORG, 'prf_unknown')).toBeNull();
  });

  it('ends with the same grouping and the same winner whatever order the events arrive in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...permutations([0, 1, 2, 3, 4])), async (order) => {
        const [a1, a2, a3] = [anonymousId(), anonymousId(), anonymousId()];
        const u = userId();
        const events = [
          rawEvent({ anonymousId: a1, receivedAt: at(0) }),
          rawEvent({ anonymousId: a2, receivedAt: at(1) }),
          rawEvent({ anonymousId: a3, receivedAt: at(2) }),
          rawEvent({ anonymousId: a1, userId: u, receivedAt: at(3) }),
          rawEvent({ anonymousId: a2, userId: u, receivedAt: at(4) }),
        ];
        for (const i of order) {
          const event = events[i];
          if (event !== undefined) await graph.ingest(event);
        }
        const roots = await Promise.all([a1, a2].map((a) => profileOf({ anonymousId: a })));
        expect(new Set(roots).size).toBe(1);
        expect(await profileOf({ userId: u })).toBe(roots[0]);
        expect(await profileOf({ anonymousId: a3 })).not.toBe(roots[0]);
        // The winner is the oldest profile among those the order created (ties: smallest id).
        const { rows } = await db.query(
          `SELECT id FROM identity_profiles WHERE id = $1 OR merged_into = $1 ORDER BY created_at, id LIMIT 1`,
          [roots[0]],
        );
        expect(rows[0]?.id).toBe(roots[0]);
      }),
      { numRuns: 12 },
    );
  });

  it('keeps two people apart on a shared device: the anonymous id moves to the user who identified last', async () => {
    const a = anonymousId();
    const [u1, u2] = [userId(), userId()];
    const p1 = (await graph.ingest(rawEvent({ anonymousId: a, userId: u1, receivedAt: at(0) }))).profileId;
    const second = await graph.ingest(rawEvent({ anonymousId: a, userId: u2, receivedAt: at(1) }));
    expect(second.moved).toBe(true);
    expect(second.profileId).not.toBe(p1);
    expect(await profileOf({ userId: u1 })).toBe(p1);
    expect(await profileOf({ userId: u2 })).toBe(second.profileId);
    expect(await profileOf({ anonymousId: a })).toBe(second.profileId);
    // Both users already have profiles: the device's id moves back without merging the two people.
    const back = await graph.ingest(rawEvent({ anonymousId: a, userId: u1, receivedAt: at(2) }));
    expect(back).toEqual({ profileId: p1, merged: [], moved: true });
    expect(await profileOf({ userId: u2 })).toBe(second.profileId);
  });

  it('is idempotent: redelivered events change nothing', async () => {
    const a = anonymousId();
    const u = userId();
    const events = [
      rawEvent({ anonymousId: a, receivedAt: at(0), clickIds: { fbp: 'fb.1.1700000000000.111' } }),
      rawEvent({ anonymousId: a, userId: u, traits: { plan: 'pro' }, receivedAt: at(1) }),
    ];
    for (const e of events) await graph.ingest(e);
    const snapshot = await dumpIdentityTables();
    for (const e of events) await graph.ingest(e);
    expect(await dumpIdentityTables()).toBe(snapshot);
  });

  it('ignores events without any id', async () => {
    const { userId: _user, anonymousId: _anonymous, ...event } = rawEvent({ userId: 'x' });
    expect(await graph.ingest(event)).toEqual({ profileId: null, merged: [], moved: false });
  });
});

describe('traits and vendor ids', () => {
  it('keeps the latest value of each trait, across merges too', async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    const u = userId();
    await graph.ingest(
      rawEvent({ anonymousId: a1, userId: u, traits: { plan: 'free', city: 'Berlin' }, receivedAt: at(0) }),
    );
    await graph.ingest(rawEvent({ anonymousId: a2, receivedAt: at(1) }));
    await graph.ingest(
      rawEvent({ type: 'identify', anonymousId: a2, traits: { plan: 'pro' }, receivedAt: at(2) }),
    );
    await graph.ingest(rawEvent({ anonymousId: a2, userId: u, traits: { seats: 3 }, receivedAt: at(3) }));
    // An older value arriving late does not overwrite a newer one.
    await graph.ingest(
      rawEvent({ anonymousId: a1, userId: u, traits: { plan: 'trial' }, receivedAt: at(1) }),
    );
    const found = await graph.lookup(ORG, { userId: u }, { consent: true, kinds: [], traits: true });
    expect(found?.traits).toEqual({ plan: 'pro', city: 'Berlin', seats: 3 });
  });

  it('keeps vendor and click ids per profile and returns the most recent of each kind the vendor accepts', async () => {
    const a = anonymousId();
    const u = userId();
    await graph.ingest(
      rawEvent({
        anonymousId: a,
        clickIds: { fbp: 'fb.1.1700000000000.1', gclid: 'Cj0KCQ-first', someother: 'x' },
        receivedAt: at(0),
      }),
    );
    await graph.ingest(
      rawEvent({ anonymousId: a, userId: u, clickIds: { fbp: 'fb.1.1700000000000.2' }, receivedAt: at(180) }),
    );
    const found = await graph.lookup(
      ORG,
      { anonymousId: a },
      { consent: true, kinds: ['fbp', 'gclid', 'user_id', 'ttp'] },
    );
    expect(found?.identifiers).toEqual({ fbp: 'fb.1.1700000000000.2', gclid: 'Cj0KCQ-first', user_id: u });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM identity_identifiers WHERE profile_id = $1 AND kind NOT IN ('fbp', 'gclid', 'anonymous_id', 'user_id')",
      [found?.profileId],
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('vendor ids never link profiles: two visitors sharing a cookie value stay apart', async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    const shared = { _ga: 'x', ga: 'GA1.1.123.456' };
    const p1 = (await graph.ingest(rawEvent({ anonymousId: a1, clickIds: { ga: shared.ga } }))).profileId;
    const p2 = (await graph.ingest(rawEvent({ anonymousId: a2, clickIds: { ga: shared.ga } }))).profileId;
    expect(p1).not.toBe(p2);
  });

  it('answers nothing, and decrypts nothing, without consent', async () => {
    const a = anonymousId();
    await graph.ingest(rawEvent({ anonymousId: a, clickIds: { fbp: 'fb.1.1700000000000.3' } }));
    expect(
      await graph.lookup(ORG, { anonymousId: a }, { consent: false, kinds: ['fbp'], traits: true }),
    ).toBeNull();
    expect(
      await graph.lookup(ORG, { anonymousId: anonymousId() }, { consent: true, kinds: ['fbp'] }),
    ).toBeNull();
  });

  it('stores no identifier or trait in plaintext: the tables read without the key show none of them', async () => {
    const a = anonymousId();
    const u = 'jane.doe.42@example.com';
    const traits = {
      email: 'jane.doe@example.com',
      phone: '+4915112345678',
      name: 'Jane Q. Doe',
      zip: '10115',
    };
    const fbp = 'fb.1.1700000000000.987654321';
    await graph.ingest(
      rawEvent({ anonymousId: a, userId: u, traits, clickIds: { fbp, gclid: 'Cj0KCQiA-secret' } }),
    );
    const dump = await dumpIdentityTables();
    expect(dump.length).toBeGreaterThan(0);
    // Ciphertexts (v1 text form, base64url) are random, and so are ids, key ids and blind-index digests (long
    // hex runs): a short needle such as "Doe" or "10115" turns up in them by chance now and then (~0.7% of
    // runs for "10115" before hex was masked too). They are opaque without the key, so look everywhere else.
    const sealed = /v1\.[A-Za-z0-9_-]+/g;
    expect(dump).toMatch(sealed);
    const outsideCiphertexts = dump.replace(sealed, '<sealed>').replace(/[0-9a-f]{16,}/g, '<opaque>');
    for (const plaintext of [
      a,
      u,
      fbp,
      'Cj0KCQiA-secret',
      ...Object.values(traits),
      'jane',
      'Doe',
      '15112345678',
    ]) {
      expect(outsideCiphertexts).not.toContain(plaintext);
    }
    // Still all there for whoever holds the key.
    const found = await graph.lookup(
      ORG,
      { userId: u },
      { consent: true, kinds: ['fbp', 'anonymous_id'], traits: true },
    );
    expect(found).toMatchObject({ identifiers: { fbp, anonymous_id: a }, traits });
  });

  it('a ciphertext copied to another row does not open (the row is bound into it)', async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    await graph.ingest(rawEvent({ anonymousId: a1, clickIds: { fbp: 'fb.1.1700000000000.4' }, traits: {} }));
    const p2 = (await graph.ingest(rawEvent({ anonymousId: a2, clickIds: { fbp: 'fb.1.1700000000000.5' } })))
      .profileId;
    const p1 = await profileOf({ anonymousId: a1 });
    await db.query(
      `UPDATE identity_identifiers SET value = (SELECT value FROM identity_identifiers WHERE profile_id = $1 AND kind = 'fbp')
        WHERE profile_id = $2 AND kind = 'fbp'`,
      [p1, p2],
    );
    await expect(
      graph.lookup(ORG, { anonymousId: a2 }, { consent: true, kinds: ['fbp'] }),
    ).rejects.toMatchObject({
      code: 'corrupt_record',
    });
    await graph.erase(ORG, a2);
  });
});

describe('encryption at rest', () => {
  it('every registered encrypted column opens with the registry’s context and names its key id', async () => {
    await graph.ingest(
      rawEvent({
        anonymousId: anonymousId(),
        userId: userId(),
        traits: { plan: 'x' },
        clickIds: { ttp: 'ttp-1' },
      }),
    );
    for (const column of IDENTITY_ENCRYPTED_COLUMNS) {
      const extra = column.contextColumns.map((c) => `, ${c}`).join('');
      const { rows } = await db.query(
        `SELECT ${column.idColumn} AS id, ${column.column} AS value, ${column.keyIdColumn} AS key_id${extra} FROM ${column.table}`,
      );
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        const value = String(row.value);
        expect(value.startsWith('v1.')).toBe(true);
        expect(row.key_id).toBe(crypto.keyIdOf(value));
        expect(() =>
          crypto.openText(value, column.context({ id: String(row.id), columns: row })),
        ).not.toThrow();
      }
    }
  });

  it('keeps finding profiles after ENCRYPTION_KEY rotates (the blind-index key is itself a sealed record)', async () => {
    const a = anonymousId();
    const u = userId();
    await graph.ingest(rawEvent({ anonymousId: a, userId: u, clickIds: { fbp: 'fb.1.1700000000000.6' } }));
    const rotated = createCryptoService({
      keyring: createKeyring({ current: randomBytes(32), previous: KEY }),
    });
    const after = createIdentityGraph({ db, crypto: rotated, index: await loadBlindIndex(db, rotated) });
    expect(
      await after.lookup(ORG, { userId: u }, { consent: true, kinds: ['fbp', 'anonymous_id'] }),
    ).toMatchObject({
      identifiers: { fbp: 'fb.1.1700000000000.6', anonymous_id: a },
    });
  });

  it('refuses to start with another deployment’s key: the blind-index key does not open', async () => {
    const stranger = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
    await expect(loadBlindIndex(db, stranger)).rejects.toMatchObject({ code: 'corrupt_record' });
  });
});

describe('erasure', () => {
  it('erases a visitor by user id: profiles (merged ones too), identifiers and traits, and records identity.erased', async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    const u = 'erase.me@example.com';
    await graph.ingest(
      rawEvent({ anonymousId: a1, receivedAt: at(0), clickIds: { fbp: 'fb.1.1700000000000.7' } }),
    );
    await graph.ingest(rawEvent({ anonymousId: a2, receivedAt: at(1) }));
    await graph.ingest(rawEvent({ anonymousId: a1, userId: u, traits: { email: u }, receivedAt: at(2) }));
    await graph.ingest(rawEvent({ anonymousId: a2, userId: u, receivedAt: at(3) }));
    const profileId = await profileOf({ userId: u });
    const bystander = anonymousId();
    await graph.ingest(rawEvent({ anonymousId: bystander }));

    const logger = recordingLogger();
    const audit = createAuditLog({ db, logger });
    const erasure = createIdentityErasure({ graph, audit, logger });
    const actor = { user_id: 'usr_admin', user_email: 'admin@example.com', ip_address: '203.0.113.9' };
    expect(await erasure.eraseSubject(ORG, u, actor)).toEqual({ profiles: 2, identifiers: 4, traits: 1 });

    for (const subject of [{ userId: u }, { anonymousId: a1 }, { anonymousId: a2 }]) {
      expect(await profileOf(subject)).toBeNull();
    }
    const { rows } = await db.query(
      'SELECT count(*)::int AS n FROM identity_profiles WHERE id = $1 OR merged_into = $1',
      [profileId],
    );
    expect(rows[0]?.n).toBe(0);
    expect(await profileOf({ anonymousId: bystander })).not.toBeNull();

    const entries = (await audit.list({ action: 'identity.erased' })).data;
    expect(entries[0]).toMatchObject({
      action: 'identity.erased',
      org_id: ORG,
      user_id: 'usr_admin',
      resource_type: 'identity',
      resource_id: profileId,
      changes: {
        profiles: { old: 2, new: 0 },
        identifiers: { old: 4, new: 0 },
        trait_records: { old: 1, new: 0 },
      },
    });
    expect(JSON.stringify(entries[0])).not.toContain('erase.me');

    // Erasing again is harmless, answers zeros and is recorded too.
    expect(await erasure.eraseSubject(ORG, u, actor)).toEqual({ profiles: 0, identifiers: 0, traits: 0 });
    expect((await audit.list({ action: 'identity.erased' })).data).toHaveLength(2);
  });

  it('erases by anonymous id', async () => {
    const a = anonymousId();
    await graph.ingest(rawEvent({ anonymousId: a, clickIds: { ttp: 'ttp-2' } }));
    expect(await graph.erase(ORG, a)).toMatchObject({ profiles: 1, identifiers: 2, traits: 0 });
    expect(await profileOf({ anonymousId: a })).toBeNull();
  });

  it('refuses an empty or oversized subject', async () => {
    await expect(graph.erase(ORG, '')).rejects.toMatchObject({ code: 'invalid_subject' });
    await expect(graph.erase(ORG, 'x'.repeat(257))).rejects.toMatchObject({ code: 'invalid_subject' });
  });
});

describe('erasure and events still on the bus', () => {
  const T0 = Date.parse('2026-03-01T12:00:00Z');
  const minutes = (n: number) => new Date(T0 + n * 60_000).toISOString();
  const clock = { now: T0 };
  let clocked: IdentityGraph;

  beforeAll(async () => {
    clocked = createIdentityGraph({
      db,
      crypto,
      index: await loadBlindIndex(db, crypto),
      now: () => clock.now,
    });
  });

  async function rootOf(subject: { anonymousId?: string; userId?: string }): Promise<string | null> {
    return (await clocked.lookup(ORG, subject, { consent: true, kinds: [] }))?.profileId ?? null;
  }

  it('a raw event received before the erasure and delivered again does not bring the person back', async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    const u = `ada.${randomBytes(4).toString('hex')}@example.com`;
    const identify = rawEvent({
      anonymousId: a1,
      userId: u,
      traits: { email: u, phone: '+4412345' },
      receivedAt: minutes(0),
    });
    const onOtherBrowser = rawEvent({ anonymousId: a2, userId: u, receivedAt: minutes(1) });
    const page = rawEvent({
      anonymousId: a2,
      clickIds: { fbp: 'fb.1.1700000000000.99' },
      receivedAt: minutes(2),
    });
    for (const event of [identify, onOtherBrowser, page]) await clocked.ingest(event);
    clock.now = T0 + 10 * 60_000;
    expect(await clocked.erase(ORG, u)).toMatchObject({ profiles: 1 });

    // A crash before the commit, a lagging consumer, a replay within retention: the same messages again.
    for (const event of [identify, onOtherBrowser, page]) {
      expect(await clocked.ingest(event)).toEqual({
        profileId: null,
        merged: [],
        moved: false,
        dropped: 'erased',
      });
    }
    for (const subject of [{ userId: u }, { anonymousId: a1 }, { anonymousId: a2 }]) {
      expect(await rootOf(subject)).toBeNull();
    }
    const found = await clocked.lookup(
      ORG,
      { userId: u },
      { consent: true, kinds: ['user_id'], traits: true },
    );
    expect(found).toBeNull();
  });

  it('a new sign-up after the erasure creates a new profile, without anything from before', async () => {
    const a = anonymousId();
    const u = `grace.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0;
    await clocked.ingest(
      rawEvent({ anonymousId: a, userId: u, traits: { plan: 'old' }, receivedAt: minutes(0) }),
    );
    const before = await rootOf({ userId: u });
    clock.now = T0 + 60 * 60_000;
    await clocked.erase(ORG, u);

    // Stamped within the clock margin (gateway and eraser read different clocks): still "before".
    const inMargin = rawEvent({
      anonymousId: a,
      userId: u,
      traits: { plan: 'margin' },
      receivedAt: minutes(60.25),
    });
    expect((await clocked.ingest(inMargin)).dropped).toBe('erased');
    const signUp = rawEvent({ anonymousId: a, userId: u, traits: { plan: 'new' }, receivedAt: minutes(62) });
    const created = await clocked.ingest(signUp);
    expect(created.dropped).toBeUndefined();
    expect(created.profileId).not.toBeNull();
    expect(created.profileId).not.toBe(before);
    expect(
      await clocked.lookup(ORG, { userId: u }, { consent: true, kinds: ['anonymous_id'], traits: true }),
    ).toEqual({
      profileId: created.profileId,
      identifiers: { anonymous_id: a },
      traits: { plan: 'new' },
    });
    // An old message of the erased profile delivered now still does not touch the new one.
    const old = rawEvent({ anonymousId: a, userId: u, traits: { plan: 'old' }, receivedAt: minutes(1) });
    expect((await clocked.ingest(old)).dropped).toBe('erased');
    expect(
      (await clocked.lookup(ORG, { userId: u }, { consent: true, kinds: [], traits: true }))?.traits,
    ).toEqual({
      plan: 'new',
    });
  });

  it('an erasure that runs before the hub has seen the person keeps their earlier events out too', async () => {
    const [a, other] = [anonymousId(), anonymousId()];
    const u = `lag.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0 + 5 * 60_000;
    expect(await clocked.erase(ORG, u)).toMatchObject({ profiles: 0 });
    // Partition order: the identify links `a` to the erased user; `a`'s later page view (received before the
    // erasure too) is then dropped as well, although the graph never held `a`.
    expect(
      (await clocked.ingest(rawEvent({ anonymousId: a, userId: u, receivedAt: minutes(1) }))).dropped,
    ).toBe('erased');
    expect((await clocked.ingest(rawEvent({ anonymousId: a, receivedAt: minutes(2) }))).dropped).toBe(
      'erased',
    );
    expect(await rootOf({ anonymousId: a })).toBeNull();
    expect(await rootOf({ userId: u })).toBeNull();
    // Someone else is unaffected.
    expect(
      (await clocked.ingest(rawEvent({ anonymousId: other, receivedAt: minutes(2) }))).profileId,
    ).not.toBeNull();
  });

  it('keeps only keyed digests: no id, no plain hash of it, nothing that joins to a live identifier', async () => {
    const a = anonymousId();
    const u = `hash.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0;
    await clocked.ingest(rawEvent({ anonymousId: a, userId: u, receivedAt: minutes(0) }));
    const { rows: live } = await db.query(
      "SELECT digest FROM identity_identifiers WHERE profile_id = $1 AND kind IN ('anonymous_id', 'user_id')",
      [await rootOf({ userId: u })],
    );
    const before = await db.query('SELECT count(*)::int AS n FROM identity_erasures');
    clock.now = T0 + 60_000;
    await clocked.erase(ORG, u);
    const { rows } = await db.query('SELECT t::text AS row, digest FROM identity_erasures t');
    // The subject as user id and as anonymous id (erase looks up both), and the anonymous id of its profile.
    expect(rows.length - Number(before.rows[0]?.n)).toBe(3);
    const dump = rows.map((r) => String(r.row)).join('\n');
    const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
    for (const needle of [u, a, sha256(u), sha256(a), ...live.map((r) => String(r.digest))]) {
      expect(dump).not.toContain(needle);
    }
  });

  it('purges records once their retention (30 days by default) has passed, not before', async () => {
    const u = `purge.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0 + 365 * 86_400_000; // later than every other record of this file
    await clocked.erase(ORG, u);
    const event = rawEvent({ userId: u, receivedAt: new Date(clock.now - 60_000).toISOString() });
    clock.now += ERASURE_RECORD_RETENTION_MS - 1;
    await clocked.purgeErasureRecords();
    expect((await clocked.ingest(event)).dropped).toBe('erased');
    clock.now += 1;
    expect(await clocked.purgeErasureRecords()).toBeGreaterThanOrEqual(2);
    const { rows } = await db.query(
      'SELECT count(*)::int AS n FROM identity_erasures WHERE expires_at > $1',
      [new Date(clock.now)],
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('refuses a retention shorter than the raw-events retention (7 days)', async () => {
    const index = await loadBlindIndex(db, crypto);
    expect(() =>
      createIdentityGraph({ db, crypto, index, erasureRetentionMs: MIN_ERASURE_RECORD_RETENTION_MS - 1 }),
    ).toThrow(/erasureRetentionMs/);
  });
});

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}
