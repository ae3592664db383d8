import { createHash, randomBytes } from 'node:crypto';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate, type Queryable } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousId, DEMO_PIPELINE, rawEvent } from '../../test/support';
import { identityHubMigrations } from '../migrations';
import { loadBlindIndex } from './blind-index';
import { createErasedSubjects } from './erased-subjects';
import { createIdentityGraph, ERASURE_CLOCK_MARGIN_MS, type IdentityGraph } from './identity-graph';

/**
 * What the delivery worker asks before sending an event on: was its person erased after it arrived? Read from
 * the graph's own erasure records, written by a real erasure.
 */

const ORG = DEMO_PIPELINE.orgId;
/** Recent: the records expire (30 days after the erasure) by the database's clock. */
const T0 = Date.now() - 3_600_000;
const at = (ms: number) => new Date(T0 + ms).toISOString();

let db: Database;
let crypto: CryptoService;
let graph: IdentityGraph;
const clock = { now: T0 };

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, identityHubMigrations);
  crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
  graph = createIdentityGraph({
    db,
    crypto,
    index: await loadBlindIndex(db, crypto),
    now: () => clock.now,
  });
});
afterAll(async () => {
  await db.close();
});

describe('erased subjects, as the delivery worker sees them', () => {
  it("drops an erased person's events received before the erasure (all their ids), and nothing else", async () => {
    const [a1, a2, other] = [anonymousId(), anonymousId(), anonymousId()];
    const user = `ada.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0;
    await graph.ingest(rawEvent({ anonymousId: a1, userId: user, receivedAt: at(0) }));
    await graph.ingest(rawEvent({ anonymousId: a2, userId: user, receivedAt: at(1000) }));
    await graph.ingest(rawEvent({ anonymousId: other, receivedAt: at(2000) }));
    const view = createErasedSubjects({ db, crypto });
    await view.refresh();
    const before = { org: ORG, anonymousId: a2, receivedAt: at(5000) };
    expect(view.erasedBefore(before)).toBe(false); // nothing erased yet

    clock.now = T0 + 60_000;
    await graph.erase(ORG, user);
    expect(view.erasedBefore(before)).toBe(false); // not re-read yet
    await view.refresh();

    // Every id the person had: by anonymous id (either browser), by user id, received before the erasure.
    expect(view.erasedBefore(before)).toBe(true);
    expect(view.erasedBefore({ org: ORG, anonymousId: a1, receivedAt: at(0) })).toBe(true);
    expect(view.erasedBefore({ org: ORG, userId: user, receivedAt: at(30_000) })).toBe(true);
    expect(view.erasedBefore({ org: ORG, anonymousId: other, userId: user, receivedAt: at(0) })).toBe(true);
    // Within the clock margin after the erasure: still "before" (gateway and eraser read different clocks).
    expect(
      view.erasedBefore({ org: ORG, userId: user, receivedAt: at(60_000 + ERASURE_CLOCK_MARGIN_MS - 1) }),
    ).toBe(true);
    // An unreadable receipt time cannot prove the event came later.
    expect(view.erasedBefore({ org: ORG, userId: user, receivedAt: 'yesterday' })).toBe(true);

    // A new visit after the erasure is new collection; another person, and the same id in another org, are
    // not the erased person.
    expect(
      view.erasedBefore({ org: ORG, userId: user, receivedAt: at(60_000 + ERASURE_CLOCK_MARGIN_MS) }),
    ).toBe(false);
    expect(view.erasedBefore({ org: ORG, anonymousId: other, receivedAt: at(0) })).toBe(false);
    expect(view.erasedBefore({ org: 'org_someone_else', userId: user, receivedAt: at(0) })).toBe(false);
    expect(view.erasedBefore({ org: ORG, receivedAt: at(0) })).toBe(false);
  });

  it('recognises a message whose ids a rule changed by the erasure digests of the ids it arrived with', async () => {
    const user = `carol.${randomBytes(4).toString('hex')}@example.com`;
    const [device, otherDevice] = [anonymousId(), anonymousId()];
    const view = createErasedSubjects({ db, crypto });
    await view.refresh();
    // Made by the processor while nothing was erased: the person's ids as received, digested.
    clock.now = T0;
    const arrived = { org: ORG, anonymousId: device, userId: user, receivedAt: at(0) };
    const digests = view.erasureDigestsOf(arrived);
    expect(digests).toEqual({
      anonymousId: expect.stringMatching(/^[0-9a-f]{64}$/),
      userId: expect.any(String),
    });
    // Keyed per org: the same ids in another org digest differently; and no id appears in them.
    expect(view.erasureDigestsOf({ ...arrived, org: 'org_someone_else' })).not.toEqual(digests);
    expect(JSON.stringify(digests)).not.toContain(user);

    // The delivery message goes on with its user id hashed by a PII rule and a device the graph never saw.
    const hashed = createHash('sha256').update(user).digest('hex');
    const delivered = { org: ORG, anonymousId: otherDevice, userId: hashed, receivedAt: at(0) };
    clock.now = T0 + 60_000;
    await graph.erase(ORG, user);
    await view.refresh();
    expect(view.erasedBefore(delivered)).toBe(false); // its own ids no longer name the person
    expect(view.erasedBefore(delivered, digests)).toBe(true);
    expect(view.erasedBefore(delivered, { userId: digests?.userId })).toBe(true);
    // Someone else's digests, and the person's on a visit after the erasure, are not dropped.
    const others = view.erasureDigestsOf({ org: ORG, userId: `dan.${user}`, receivedAt: at(0) });
    expect(view.erasedBefore(delivered, others)).toBe(false);
    const later = { ...delivered, receivedAt: at(60_000 + ERASURE_CLOCK_MARGIN_MS) };
    expect(view.erasedBefore(later, digests)).toBe(false);
  });

  it('holds nothing as erased before the identity tables or the blind-index key exist, then catches up', async () => {
    const empty = await createDatabase({ kind: 'pglite' });
    try {
      const view = createErasedSubjects({ db: empty, crypto });
      expect(await view.refresh()).toBe('no_tables');
      expect(view.erasedBefore({ org: ORG, userId: 'u', receivedAt: at(0) })).toBe(false);
      await migrate(empty, identityHubMigrations);
      // Tables, but no key yet: nothing can have been erased.
      expect(await view.refresh()).toBe('no_key');
      expect(view.erasedBefore({ org: ORG, userId: 'u', receivedAt: at(0) })).toBe(false);
      // No key, no digests: a message made now is matched on its own ids only.
      expect(view.erasureDigestsOf({ org: ORG, userId: 'u', receivedAt: at(0) })).toBeUndefined();

      const hub = createIdentityGraph({
        db: empty,
        crypto,
        index: await loadBlindIndex(empty, crypto),
        now: () => T0 + 60_000,
      });
      await hub.ingest(rawEvent({ anonymousId: anonymousId(), userId: 'u', receivedAt: at(0) }));
      await hub.erase(ORG, 'u');
      expect(await view.refresh()).toBe('loaded');
      expect(view.erasedBefore({ org: ORG, userId: 'u', receivedAt: at(0) })).toBe(true);
    } finally {
      await empty.close();
    }
  });

  it('re-reads the records only when they changed: a new erasure, a re-erasure, an expiry', async () => {
    const user = `erin.${randomBytes(4).toString('hex')}@example.com`;
    const fullReads: string[] = [];
    const counting: Pick<Queryable, 'query'> = {
      query: <R>(sql: string, params?: readonly unknown[]) => {
        if (sql.includes('SELECT NULL, kind, digest')) fullReads.push(sql);
        return db.query<R>(sql, params);
      },
    };
    const view = createErasedSubjects({ db: counting, crypto });
    await view.refresh();
    expect(fullReads).toHaveLength(1);
    await view.refresh();
    await view.refresh();
    expect(fullReads).toHaveLength(1); // nothing changed: the summary alone

    clock.now = T0 + 120_000;
    await graph.erase(ORG, user);
    await view.refresh();
    expect(fullReads).toHaveLength(2);
    const between = { org: ORG, userId: user, receivedAt: at(120_000 + ERASURE_CLOCK_MARGIN_MS + 1000) };
    expect(view.erasedBefore(between)).toBe(false);

    // Erased again later, same ids, same number of records: only the erasure time moved.
    clock.now = T0 + 120_000 + ERASURE_CLOCK_MARGIN_MS + 60_000;
    await graph.erase(ORG, user);
    await view.refresh();
    expect(fullReads).toHaveLength(3);
    expect(view.erasedBefore(between)).toBe(true);

    // Expired records stop counting once the database says so.
    await db.query(`UPDATE identity_erasures SET expires_at = now() - interval '1 second'`);
    await view.refresh();
    expect(fullReads).toHaveLength(4);
    expect(view.erasedBefore(between)).toBe(false);
  });

  it('a failed refresh keeps the records already read in force', async () => {
    const user = `bob.${randomBytes(4).toString('hex')}@example.com`;
    clock.now = T0;
    await graph.ingest(rawEvent({ anonymousId: anonymousId(), userId: user, receivedAt: at(0) }));
    clock.now = T0 + 60_000;
    await graph.erase(ORG, user);
    let fail = false;
    const flaky: Pick<Queryable, 'query'> = {
      query: <R>(sql: string, params?: readonly unknown[]) =>
        fail ? Promise.reject(new Error('connection lost')) : db.query<R>(sql, params),
    };
    const view = createErasedSubjects({ db: flaky, crypto });
    await view.refresh();
    fail = true;
    await expect(view.refresh()).rejects.toThrow('connection lost');
    expect(view.erasedBefore({ org: ORG, userId: user, receivedAt: at(0) })).toBe(true);
  });
});
