import { randomBytes } from 'node:crypto';
import { auditMigrations, createAuditLog } from '@signal/audit';
import { loadConfig } from '@signal/config';
import { CryptoError } from '@signal/crypto';
import { kmsMigrations } from '@signal/kms';
import { bootstrapCryptoWithKms, type KmsCryptoRuntime } from '@signal/runtime';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { anonymousId, DEMO_PIPELINE, rawEvent, recordingLogger } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { loadBlindIndex } from './blind-index';
import { identifierContext, traitsContext } from './encrypted-columns';
import { createIdentityErasure } from './erasure';
import { createIdentityGraph, type IdentityGraph } from './identity-graph';

/** The org of every event `rawEvent` makes (the demo pipeline's). */
const ORG = DEMO_PIPELINE.orgId;

/**
 * Crypto-shredding with the real runtime (envelope mode, local KMS provider, PGlite: one connection, so
 * nothing may touch the DEK table while a graph transaction is open).
 */
const KEY = randomBytes(32).toString('hex');
const quiet = { info() {}, warn() {} };
const runtimes: KmsCryptoRuntime[] = [];
let db: Database;

function envelope(extra: Record<string, string> = {}) {
  return loadConfig({
    env: {
      ENCRYPTION_KEY: KEY,
      ENCRYPTION_ENVELOPE: 'true',
      ENCRYPTION_CRYPTO_SHREDDING: 'true',
      ...extra,
    },
    cwd: '/nonexistent',
  });
}

/** One process: its own crypto runtime (DEK cache) and graph, on the shared database. */
async function startProcess(extra: Record<string, string> = {}) {
  const runtime = await bootstrapCryptoWithKms({ config: envelope(extra), logger: quiet, db });
  runtimes.push(runtime);
  const { subjectKeys } = runtime;
  if (subjectKeys === undefined) throw new Error('shredding is on: the runtime must expose subject keys');
  const graph = createIdentityGraph({
    db,
    crypto: runtime.crypto,
    index: await loadBlindIndex(db, runtime.crypto),
    profileKeys: subjectKeys,
  });
  return { runtime, crypto: runtime.crypto, graph };
}

let main: Awaited<ReturnType<typeof startProcess>>;

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, [...auditMigrations, ...kmsMigrations, ...identityHubMigrations]);
  main = await startProcess();
});
afterAll(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.close();
  await db.close();
});

async function subjectDek(profileId: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM crypto_deks WHERE subject = $1 AND state = 'active'",
    [profileId],
  );
  if (rows[0] === undefined) throw new Error(`no active DEK for ${profileId}`);
  return rows[0].id;
}

async function sealedRows(profileId: string) {
  const identifiers = await db.query<{ id: string; kind: string; value: string; value_key_id: string }>(
    'SELECT id, kind, value, value_key_id FROM identity_identifiers WHERE profile_id = $1 ORDER BY id',
    [profileId],
  );
  const traits = await db.query<{ traits: string; traits_key_id: string }>(
    'SELECT traits, traits_key_id FROM identity_traits WHERE profile_id = $1',
    [profileId],
  );
  return { identifiers: identifiers.rows, traits: traits.rows[0] };
}

async function profileOf(graph: IdentityGraph, subject: { anonymousId?: string; userId?: string }) {
  return (await graph.lookup(ORG, subject, { consent: true, kinds: [] }))?.profileId ?? null;
}

async function failure(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'opened',
    (error: unknown) => (error instanceof CryptoError ? error.code : String(error)),
  );
}

describe('identity graph with crypto-shredding', () => {
  it("seals each profile's identifiers and traits under that profile's own DEK, and reads them back", async () => {
    const [a, b] = [anonymousId(), anonymousId()];
    const user = `user-${randomBytes(4).toString('hex')}`;
    await main.graph.ingest(
      rawEvent({
        anonymousId: a,
        userId: user,
        traits: { email: 'ada@example.com' },
        clickIds: { gclid: 'g-1' },
      }),
    );
    await main.graph.ingest(rawEvent({ anonymousId: b }));
    const [pa, pb] = [
      await profileOf(main.graph, { anonymousId: a }),
      await profileOf(main.graph, { anonymousId: b }),
    ];
    if (pa === null || pb === null) throw new Error('profiles expected');

    const dekA = await subjectDek(pa);
    const rows = await sealedRows(pa);
    expect(rows.identifiers.map((row) => row.value_key_id)).toEqual(rows.identifiers.map(() => dekA));
    expect(rows.traits?.traits_key_id).toBe(dekA);
    expect(await subjectDek(pb)).not.toBe(dekA);

    const enrichment = await main.graph.lookup(
      ORG,
      { userId: user },
      { consent: true, kinds: ['user_id', 'anonymous_id', 'gclid'], traits: true },
    );
    expect(enrichment).toMatchObject({
      profileId: pa,
      identifiers: { user_id: user, anonymous_id: a, gclid: 'g-1' },
      traits: { email: 'ada@example.com' },
    });
  });

  it("a merge re-seals the merged-away profile's data under the surviving profile's DEK", async () => {
    const [a1, a2] = [anonymousId(), anonymousId()];
    const user = `user-${randomBytes(4).toString('hex')}`;
    await main.graph.ingest(rawEvent({ anonymousId: a1, receivedAt: '2026-03-01T12:00:00.000Z' }));
    await main.graph.ingest(
      rawEvent({
        anonymousId: a2,
        userId: user,
        traits: { plan: 'pro' },
        clickIds: { fbclid: 'fb-2' },
        receivedAt: '2026-03-01T12:01:00.000Z',
      }),
    );
    const older = await profileOf(main.graph, { anonymousId: a1 });
    const younger = await profileOf(main.graph, { anonymousId: a2 });
    if (older === null || younger === null) throw new Error('profiles expected');
    const youngerDek = await subjectDek(younger);

    // a1 is identified as the same user: a1's (older, user-less) profile wins and absorbs the other one.
    const merged = await main.graph.ingest(
      rawEvent({ anonymousId: a1, userId: user, receivedAt: '2026-03-01T12:02:00.000Z' }),
    );
    expect(merged).toMatchObject({ profileId: older, merged: [younger] });
    const winnerDek = await subjectDek(older);
    const rows = await sealedRows(older);
    expect(rows.identifiers.map((row) => row.kind).sort()).toEqual([
      'anonymous_id',
      'anonymous_id',
      'fbclid',
      'user_id',
    ]);
    expect(new Set(rows.identifiers.map((row) => row.value_key_id))).toEqual(new Set([winnerDek]));
    expect(rows.traits?.traits_key_id).toBe(winnerDek);
    expect(winnerDek).not.toBe(youngerDek);
    expect(
      await main.graph.lookup(
        ORG,
        { anonymousId: a2 },
        { consent: true, kinds: ['user_id', 'fbclid'], traits: true },
      ),
    ).toMatchObject({
      profileId: older,
      identifiers: { user_id: user, fbclid: 'fb-2' },
      traits: { plan: 'pro' },
    });
  });

  it("another process (nothing cached) writes too, and a shared device's anonymous id moves re-sealed", async () => {
    const other = await startProcess();
    const device = anonymousId();
    const [first, second] = [
      `first-${randomBytes(4).toString('hex')}`,
      `second-${randomBytes(4).toString('hex')}`,
    ];
    await main.graph.ingest(rawEvent({ anonymousId: device, userId: first }));
    // The second person on the same browser: a new profile (its DEK made ready outside the transaction
    // after one rolled-back attempt), and the device's anonymous id moves to it.
    const moved = await other.graph.ingest(rawEvent({ anonymousId: device, userId: second }));
    expect(moved.moved).toBe(true);
    if (moved.profileId === null) throw new Error('profile expected');
    const dek = await subjectDek(moved.profileId);
    const rows = await sealedRows(moved.profileId);
    expect(rows.identifiers.map((row) => [row.kind, row.value_key_id])).toEqual(
      expect.arrayContaining([
        ['anonymous_id', dek],
        ['user_id', dek],
      ]),
    );
    expect(
      await main.graph.lookup(ORG, { userId: second }, { consent: true, kinds: ['anonymous_id'] }),
    ).toMatchObject({ identifiers: { anonymous_id: device } });
  });

  it('erasure destroys every DEK of the person: backed-up ciphertext stays but no process, now or after a restart, opens it', async () => {
    // A process that reads the person's data and keeps the DEK in its cache, re-verified every second.
    const elsewhere = await startProcess({ ENCRYPTION_DEK_CACHE_TTL: '1' });
    const [a1, a2] = [anonymousId(), anonymousId()];
    const user = 'erase.me@example.com';
    await main.graph.ingest(rawEvent({ anonymousId: a1, receivedAt: '2026-03-01T12:00:00.000Z' }));
    await main.graph.ingest(
      rawEvent({
        anonymousId: a2,
        userId: user,
        traits: { email: user },
        receivedAt: '2026-03-01T12:01:00.000Z',
      }),
    );
    const mergedAway = await profileOf(main.graph, { anonymousId: a2 });
    // Taken before the merge (what a backup holds): sealed under the merged-away profile's DEK.
    const preMerge = mergedAway === null ? undefined : (await sealedRows(mergedAway)).traits;
    await main.graph.ingest(
      rawEvent({ anonymousId: a1, userId: user, receivedAt: '2026-03-01T12:02:00.000Z' }),
    );
    const root = await profileOf(main.graph, { userId: user });
    if (root === null || mergedAway === null || preMerge === undefined) throw new Error('profiles expected');
    const backup = await sealedRows(root);
    const traits = backup.traits;
    if (traits === undefined) throw new Error('traits expected');
    expect(
      (await elsewhere.crypto.openTextAsync(traits.traits, traitsContext(root, ORG))).toString(),
    ).toContain(user);
    const deks = [await subjectDek(root), await subjectDek(mergedAway)].sort();

    const logger = recordingLogger();
    const audit = createAuditLog({ db, logger });
    const shred = main.runtime.shredSubjects;
    if (shred === undefined) throw new Error('shredding is on');
    const erasure = createIdentityErasure({ graph: main.graph, audit, logger, shred });
    await erasure.eraseSubject(ORG, user, { user_id: 'usr_admin' });

    // The rows are gone; the copies a backup would hold still exist as ciphertext but cannot be opened.
    expect((await sealedRows(root)).identifiers).toEqual([]);
    expect(await failure(main.crypto.openTextAsync(traits.traits, traitsContext(root, ORG)))).toBe(
      'key_destroyed',
    );
    expect(await failure(main.crypto.openTextAsync(preMerge.traits, traitsContext(mergedAway, ORG)))).toBe(
      'key_destroyed',
    );
    for (const row of backup.identifiers) {
      expect(
        await failure(main.crypto.openTextAsync(row.value, identifierContext(row.id, row.kind, ORG))),
      ).toBe('key_destroyed');
    }
    const { rows: states } = await db.query<{ id: string; state: string; wrapped: unknown }>(
      'SELECT id, state, wrapped FROM crypto_deks WHERE id = ANY($1::text[]) ORDER BY id',
      [deks],
    );
    expect(states).toEqual(deks.map((id) => ({ id, state: 'destroyed', wrapped: null })));

    // The audit entry names the destroyed DEKs by id, and nothing about the person.
    const entry = (await audit.list({ action: 'identity.erased' })).data[0];
    const recorded = z
      .object({ destroyed_dek_ids: z.object({ old: z.array(z.string()), new: z.null() }) })
      .parse(entry?.changes);
    expect([...recorded.destroyed_dek_ids.old].sort()).toEqual(deks);
    expect(JSON.stringify(entry)).not.toContain('erase.me');

    // The other process re-verifies its cached DEK at its TTL (1 s here, ENCRYPTION_DEK_CACHE_TTL) and drops it.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(await failure(elsewhere.crypto.openTextAsync(traits.traits, traitsContext(root, ORG)))).toBe(
      'key_destroyed',
    );
    expect(() => elsewhere.crypto.openText(traits.traits, traitsContext(root, ORG))).toThrow(CryptoError);

    // A restart reads the destroyed rows: nothing comes back.
    const restarted = await startProcess();
    expect(await failure(restarted.crypto.openTextAsync(traits.traits, traitsContext(root, ORG)))).toBe(
      'key_destroyed',
    );
    expect(await profileOf(restarted.graph, { userId: user })).toBeNull();
  });

  it('an erased person’s event redelivered from the bus rebuilds nothing and makes no new DEK', async () => {
    const a = anonymousId();
    const user = `shredded.${randomBytes(4).toString('hex')}@example.com`;
    const event = rawEvent({
      anonymousId: a,
      userId: user,
      traits: { email: user },
      receivedAt: new Date(Date.now() - 60_000).toISOString(),
    });
    await main.graph.ingest(event);
    const shred = main.runtime.shredSubjects;
    if (shred === undefined) throw new Error('shredding is on');
    const logger = recordingLogger();
    await createIdentityErasure({
      graph: main.graph,
      audit: createAuditLog({ db, logger }),
      logger,
      shred,
    }).eraseSubject(ORG, user, { user_id: 'usr_admin' });
    const deks = async () => (await db.query('SELECT id FROM crypto_deks ORDER BY id')).rows;
    const before = await deks();

    expect((await main.graph.ingest(event)).dropped).toBe('erased');
    expect(await profileOf(main.graph, { userId: user })).toBeNull();
    expect(await profileOf(main.graph, { anonymousId: a })).toBeNull();
    expect(await deks()).toEqual(before);
  });
});
