import { randomBytes } from 'node:crypto';
import { busMigrations, createPostgresBus, type PostgresBus, publishTo } from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { topics } from '@signal/events';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousId, DEMO_PIPELINE, inMemoryPipelines, rawEvent, recordingLogger } from '../../test/support';
import { identityHubSettings } from '../config';
import { createIdentityHub } from '../identity-hub';
import { identityHubMigrations } from '../migrations';
import { cacheSingleUseStore } from '../tokens/single-use';
import { loadBlindIndex } from './blind-index';
import { createIdentityGraph } from './identity-graph';

/** The org of every event `rawEvent` makes (the demo pipeline's). */
const ORG = DEMO_PIPELINE.orgId;

let db: Database;
let bus: PostgresBus;
// One key for the file: the blind-index key the first graph creates in this database is sealed under it.
const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, [...busMigrations, ...identityHubMigrations]);
  bus = createPostgresBus({
    db,
    logger: recordingLogger(),
    crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
    sessionTimeoutMs: 1000,
    heartbeatIntervalMs: 100,
    pollIntervalMs: 20,
    retryBackoffMs: 20,
  });
});
afterAll(async () => {
  await bus.close();
  await db.close();
});

async function eventually<T>(probe: () => Promise<T | null>, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('raw-events → identity graph', () => {
  it('applies the events the gateway publishes, merges profiles, and skips what does not decode', async () => {
    const namespace = `ns${randomBytes(4).toString('hex')}`;
    const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
    const metrics = createMetrics({ processMetrics: false });
    const logger = recordingLogger();
    const cache = createMemoryCache();
    const pipelines = inMemoryPipelines([]);
    const hub = createIdentityHub({
      settings: identityHubSettings({ namespace }),
      crypto,
      singleUse: cacheSingleUseStore(cache),
      pipelines,
      linkedDomains: pipelines,
      logger,
      metrics,
      graph: { graph, bus },
    });
    const raw = topics.rawEvents(namespace);
    const [a1, a2] = [anonymousId(), anonymousId()];
    await bus.publish(raw.name, [{ key: a1, value: '{"type":"track"}' }]);
    await publishTo(bus, raw, [
      rawEvent({ anonymousId: a1, clickIds: { fbp: 'fb.1.1700000000000.42' } }),
      rawEvent({ anonymousId: a2 }),
      rawEvent({ anonymousId: a1, userId: 'user-7', traits: { plan: 'pro' } }),
      rawEvent({ anonymousId: a2, userId: 'user-7' }),
    ]);

    await hub.start();
    try {
      const found = await eventually(async () => {
        const hit = await graph.lookup(
          ORG,
          { anonymousId: a2 },
          { consent: true, kinds: ['fbp', 'user_id'], traits: true },
        );
        return hit?.identifiers.user_id === undefined ? null : hit;
      }, 'the identify events to be applied');
      expect(found).toMatchObject({
        identifiers: { fbp: 'fb.1.1700000000000.42', user_id: 'user-7' },
        traits: { plan: 'pro' },
      });
      const text = await eventually(async () => {
        const t = await metrics.metrics();
        return t.includes('signal_identity_profile_merges_total 1') ? t : null;
      }, 'the merge to be counted');
      expect(text).toContain('signal_identity_graph_events_total{outcome="applied"} 4');
      expect(text).toContain('signal_identity_graph_events_total{outcome="undecodable"} 1');
      expect(logger.entries.some((e) => e.msg === 'raw event skipped: it does not decode')).toBe(true);
    } finally {
      await hub.stop(5_000);
      await cache.close();
    }
  });

  it('drops, and counts, an erased person’s events that come round again on the bus', async () => {
    const namespace = `ns${randomBytes(4).toString('hex')}`;
    const graph = createIdentityGraph({ db, crypto, index: await loadBlindIndex(db, crypto) });
    const metrics = createMetrics({ processMetrics: false });
    const cache = createMemoryCache();
    const pipelines = inMemoryPipelines([]);
    const hub = createIdentityHub({
      settings: identityHubSettings({ namespace }),
      crypto,
      singleUse: cacheSingleUseStore(cache),
      pipelines,
      linkedDomains: pipelines,
      logger: recordingLogger(),
      metrics,
      graph: { graph, bus },
    });
    const raw = topics.rawEvents(namespace);
    const a = anonymousId();
    const events = [
      rawEvent({ anonymousId: a, clickIds: { fbp: 'fb.1.1700000000000.43' } }),
      rawEvent({ anonymousId: a, userId: 'user-erased', traits: { email: 'erased@example.com' } }),
    ];
    const counted = (outcome: string, n: number) => async () => {
      const t = await metrics.metrics();
      return t.includes(`signal_identity_graph_events_total{outcome="${outcome}"} ${n}`) ? t : null;
    };
    await publishTo(bus, raw, events);
    await hub.start();
    try {
      await eventually(counted('applied', 2), 'the events to be applied');
      expect(await graph.erase(ORG, 'user-erased')).toMatchObject({ profiles: 1, identifiers: 3 });
      // The same messages again (an uncommitted batch redelivered, a replay within retention).
      await publishTo(bus, raw, events);
      await eventually(counted('erased', 2), 'the redelivered events to be dropped');
      for (const subject of [{ userId: 'user-erased' }, { anonymousId: a }]) {
        expect(await graph.lookup(ORG, subject, { consent: true, kinds: ['fbp'], traits: true })).toBeNull();
      }
    } finally {
      await hub.stop(5_000);
      await cache.close();
    }
  });
});
