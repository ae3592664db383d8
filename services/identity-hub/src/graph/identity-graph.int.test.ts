import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousId, DEMO_PIPELINE, rawEvent } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { loadBlindIndex } from './blind-index';
import { createIdentityGraph, type IdentityGraph } from './identity-graph';

/** The org of every event `rawEvent` makes (the demo pipeline's). */
const ORG = DEMO_PIPELINE.orgId;

const available = await postgresAvailable();

describe.skipIf(!available)('identity graph on PostgreSQL under concurrency', () => {
  const schema = `idhub_graph_${randomBytes(6).toString('hex')}`;
  let db: Database;
  let graph: IdentityGraph;
  /** Another process on the same database: the Management API, which runs the erasure. */
  let admin: IdentityGraph;

  beforeAll(async () => {
    db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 10, schema });
    await migrate(db, identityHubMigrations);
    const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
    // Two instances racing to create the blind-index key end up with the same one.
    const [first, second] = await Promise.all([loadBlindIndex(db, crypto), loadBlindIndex(db, crypto)]);
    expect(first.digest(ORG, 'user_id', 'u')).toBe(second.digest(ORG, 'user_id', 'u'));
    graph = createIdentityGraph({ db, crypto, index: first });
    admin = createIdentityGraph({ db, crypto, index: second });
  });
  afterAll(async () => {
    await db?.close();
    const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
    try {
      await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await admin.close();
    }
  });

  it('one user identified on 30 browsers at once ends in exactly one profile holding all of them', async () => {
    const anons = Array.from({ length: 30 }, () => anonymousId());
    await Promise.all(anons.map((a) => graph.ingest(rawEvent({ anonymousId: a }))));
    await Promise.all(
      anons.map((a) => graph.ingest(rawEvent({ anonymousId: a, userId: 'user-concurrent' }))),
    );
    const roots = new Set(
      await Promise.all(
        anons.map(
          async (a) => (await graph.lookup(ORG, { anonymousId: a }, { consent: true, kinds: [] }))?.profileId,
        ),
      ),
    );
    expect(roots.size).toBe(1);
    const [root] = [...roots];
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM identity_identifiers WHERE profile_id = $1 AND kind IN ('anonymous_id', 'user_id')",
      [root],
    );
    expect(rows[0]?.n).toBe(31);
    const live = await db.query('SELECT count(*)::int AS n FROM identity_profiles WHERE merged_into IS NULL');
    expect(live.rows[0]?.n).toBe(1);
  });

  it('the same new visitor seen by 20 concurrent events gets one profile', async () => {
    const a = anonymousId();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => graph.ingest(rawEvent({ anonymousId: a }))),
    );
    expect(new Set(results.map((r) => r.profileId)).size).toBe(1);
  });

  it('an erasure racing the first events of a person leaves no profile, nor do the events redelivered after it', async () => {
    for (let round = 0; round < 5; round++) {
      const u = `race-${round}-${randomBytes(4).toString('hex')}@example.com`;
      const anons = Array.from({ length: 12 }, () => anonymousId());
      // All received by the gateway before the erasure; the hub applies them while it runs, and again after.
      const receivedAt = new Date(Date.now() - 1_000).toISOString();
      const events = anons.map((a, i) =>
        rawEvent({ anonymousId: a, userId: u, traits: { n: i }, receivedAt }),
      );
      const racing = events.map((event) => graph.ingest(event));
      const erased = admin.erase(ORG, u);
      await Promise.all([...racing, erased]);
      const redelivered = await Promise.all(events.map((event) => graph.ingest(event)));
      expect(redelivered.every((r) => r.dropped === 'erased')).toBe(true);
      for (const subject of [{ userId: u }, ...anons.map((a) => ({ anonymousId: a }))]) {
        expect({
          round,
          subject,
          found: await graph.lookup(ORG, subject, { consent: true, kinds: [] }),
        }).toEqual({
          round,
          subject,
          found: null,
        });
      }
    }
  });
});
