import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousId, rawEvent } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { loadBlindIndex } from './blind-index';
import { createIdentityGraph, type IdentityGraph } from './identity-graph';

const available = await postgresAvailable();

describe.skipIf(!available)('identity graph on PostgreSQL under concurrency', () => {
  const schema = `idhub_graph_${randomBytes(6).toString('hex')}`;
  let db: Database;
  let graph: IdentityGraph;

  beforeAll(async () => {
    db = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 10, schema });
    await migrate(db, identityHubMigrations);
    const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
    // Two instances racing to create the blind-index key end up with the same one.
    const [first, second] = await Promise.all([loadBlindIndex(db, crypto), loadBlindIndex(db, crypto)]);
    expect(first.digest('user_id', 'u')).toBe(second.digest('user_id', 'u'));
    graph = createIdentityGraph({ db, crypto, index: first });
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
          async (a) => (await graph.lookup({ anonymousId: a }, { consent: true, kinds: [] }))?.profileId,
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
});
