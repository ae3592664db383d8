import { randomBytes, randomUUID } from 'node:crypto';
import { createPostgresBus, publishTo, subscribeTo } from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import { createCacheConsentStateStore } from '@signal/consent';
import { controlPlaneProcessorSources, createEventProcessor } from '@signal/event-processor';
import { type CanonicalEvent, consumerGroup, type DeliveryMessage, topics } from '@signal/events';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FULL_SCHEMA, seedOrg, startTestApi, type TestApi } from './harness';

/**
 * The real configuration path, end to end and without a restart: an admin changes the Org Data Layer or an
 * integration's pipeline through the Management API → the control plane stores it (PGlite) → the running
 * processor reads it through `controlPlaneProcessorSources`, sees the version move, recompiles, and the next
 * events published on `delivery-{integration}` (what the worker delivers) follow the new rules.
 */

const A = '/v1/admin';
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const BROWSER_UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

let db: Database;
let t: TestApi;
let token: string;
let orgId: string;
let pipelineId: string;
let integrationId: string;
let stop: () => Promise<void>;
let namespace: string;
let bus: ReturnType<typeof createPostgresBus>;
const delivered = new Map<string, CanonicalEvent>();

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, FULL_SCHEMA);
  t = await startTestApi(db);
  const org = await seedOrg(t.cp, db);
  orgId = org.orgId;
  token = await t.tokenFor(org.users.admin);
  pipelineId = z
    .object({ id: z.string() })
    .parse((await t.call('POST', `${A}/pipelines`, { token, body: { name: 'Shop', type: 'web' } })).json).id;
  integrationId = z.object({ id: z.string() }).parse(
    (
      await t.call('POST', `${A}/pipelines/${pipelineId}/integrations`, {
        token,
        body: { vendor: 'webhook', name: 'Hook', consent: { category: 'analytics' } },
      })
    ).json,
  ).id;

  namespace = `t${randomBytes(4).toString('hex')}`;
  bus = createPostgresBus({
    db,
    crypto: t.crypto,
    logger: silent,
    sessionTimeoutMs: 2000,
    heartbeatIntervalMs: 200,
    pollIntervalMs: 20,
    retryBackoffMs: 50,
  });
  const cache = createMemoryCache({ namespace });
  const processor = createEventProcessor({
    bus,
    dedup: cache,
    consentStore: createCacheConsentStateStore({ cache }),
    ...controlPlaneProcessorSources(t.cp),
    namespace,
    logger: silent,
    metrics: createMetrics({ processMetrics: false }),
    // Check the stored version on every batch, so a change applies to the very next events.
    settings: { configRefreshMs: 0, batchSize: 50 },
  });
  const deliveryTopic = topics.delivery(namespace, integrationId);
  await bus.createTopics([{ name: deliveryTopic.name, partitions: 8 }]);
  const reader = await subscribeTo(bus, {
    groupId: consumerGroup(namespace, 'test-reader'),
    topics: [deliveryTopic],
    handler: async (batch) => {
      for (const item of batch.items) {
        if (item.ok) delivered.set(item.value.event.messageId, (item.value as DeliveryMessage).event);
      }
    },
  });
  await processor.start();
  const raw = topics.rawEvents(namespace);
  send = (events) => publishTo(bus, raw, events);
  stop = async () => {
    await processor.stop(2000);
    await reader.stop({ deadlineMs: 2000 });
    await bus.close();
    await cache.close();
  };
});

afterAll(async () => {
  await stop?.();
  await t?.close();
  await db?.close();
});

let send: (events: readonly CanonicalEvent[]) => Promise<unknown>;

function event(overrides: Partial<CanonicalEvent> & { userAgent?: string } = {}): CanonicalEvent {
  const now = new Date().toISOString();
  const { userAgent, ...rest } = overrides;
  return {
    type: 'track',
    event: 'Order Completed',
    // One visitor, so every event of a test lands on one partition, in order.
    anonymousId: 'anon-config-path',
    messageId: randomUUID(),
    properties: { value: 42, currency: 'EUR' },
    traits: {},
    context: {
      consent: { categories: { analytics: true } },
      provenance: 'pipeline_key',
      userAgent: userAgent ?? BROWSER_UA,
      page: { url: 'https://shop.example/checkout' },
    },
    timestamp: now,
    receivedAt: now,
    org: orgId,
    pipelineId,
    ...rest,
  };
}

/** Publishes the events and a trailing marker; resolves once the marker is delivered (so are all before it). */
async function run(events: readonly CanonicalEvent[]): Promise<void> {
  const marker = event({ event: 'Marker' });
  await send([...events, marker]);
  const deadline = Date.now() + 20_000;
  while (!delivered.has(marker.messageId)) {
    if (Date.now() > deadline) throw new Error('the marker event was not delivered in 20 s');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('Management API → control plane → running processor', () => {
  it('bot action and a routing condition set through the API apply to the next events', async () => {
    const botBefore = event({ userAgent: 'curl/8.4.0' });
    const refundBefore = event({ event: 'Order Refunded' });
    await run([botBefore, refundBefore]);
    expect(delivered.has(botBefore.messageId)).toBe(false); // default: bots dropped
    expect(delivered.has(refundBefore.messageId)).toBe(true);

    const saved = await t.call('PUT', `${A}/data-layer`, {
      token,
      body: {
        bot_filtering: { action: 'flag' },
        routing_rules: [
          {
            name: 'no refunds to webhooks',
            integrations: ['webhook'],
            action: 'drop',
            condition: { field: 'event', op: 'eq', value: 'Order Refunded' },
          },
        ],
      },
    });
    expect(saved.status).toBe(200);

    const botAfter = event({ userAgent: 'curl/8.4.0' });
    const refundAfter = event({ event: 'Order Refunded' });
    await run([botAfter, refundAfter]);
    expect(delivered.get(botAfter.messageId)?.properties).toMatchObject({
      signal_bot: { score: 100, signals: expect.arrayContaining(['known_bot']) },
    });
    expect(delivered.has(refundAfter.messageId)).toBe(false);
  });

  it("an integration's map/filter steps set through the API shape what is delivered", async () => {
    const patched = await t.call('PATCH', `${A}/integrations/${integrationId}`, {
      token,
      body: {
        pipeline: [
          {
            type: 'map',
            rename: { 'properties.sku': 'properties.product_id' },
            set: { 'properties.channel': 'web' },
            remove: ['properties.internal_note'],
          },
          { type: 'filter', condition: { field: 'properties.value', op: 'exists' } },
        ],
      },
    });
    expect(patched.status).toBe(200);

    const shaped = event({ properties: { value: 10, sku: 'S-1', internal_note: 'do not send' } });
    const unpriced = event({ properties: { sku: 'S-2' } });
    await run([shaped, unpriced]);
    expect(delivered.get(shaped.messageId)?.properties).toEqual({
      value: 10,
      product_id: 'S-1',
      channel: 'web',
    });
    expect(delivered.has(unpriced.messageId)).toBe(false);

    // Back to no steps: events go out as they came in again.
    await t.call('PATCH', `${A}/integrations/${integrationId}`, { token, body: { pipeline: [] } });
    const plain = event({ properties: { sku: 'S-3' } });
    await run([plain]);
    expect(delivered.get(plain.messageId)?.properties).toEqual({ sku: 'S-3' });
  });
});

describe('deduplication on messageId', () => {
  it('drops a repeated messageId within a pipeline, but not one another pipeline of the org used', async () => {
    // A browser pipeline's key is public (it is in every page): if dedup spanned pipelines, anyone could send
    // pixel hits with an org's predictable server-side ids (`order-1002`) and suppress its real events.
    const otherPipeline = z
      .object({ id: z.string() })
      .parse(
        (await t.call('POST', `${A}/pipelines`, { token, body: { name: 'Public pixel', type: 'web' } })).json,
      ).id;
    const otherIntegration = z.object({ id: z.string() }).parse(
      (
        await t.call('POST', `${A}/pipelines/${otherPipeline}/integrations`, {
          token,
          body: { vendor: 'webhook', name: 'Pixel hook', consent: { category: 'analytics' } },
        })
      ).json,
    ).id;
    const otherTopic = topics.delivery(namespace, otherIntegration);
    await bus.createTopics([{ name: otherTopic.name, partitions: 8 }]);
    const deliveredOther = new Map<string, CanonicalEvent>();
    const reader = await subscribeTo(bus, {
      groupId: consumerGroup(namespace, 'test-reader-other'),
      topics: [otherTopic],
      handler: async (batch) => {
        for (const item of batch.items) {
          if (item.ok) deliveredOther.set(item.value.event.messageId, (item.value as DeliveryMessage).event);
        }
      },
    });
    try {
      const messageId = `order-${randomUUID()}`;
      await run([event({ pipelineId: otherPipeline, messageId }), event({ messageId })]);
      expect(delivered.get(messageId)?.pipelineId).toBe(pipelineId);
      const deadline = Date.now() + 20_000;
      while (!deliveredOther.has(messageId) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(deliveredOther.get(messageId)?.pipelineId).toBe(otherPipeline);

      // The same pipeline sending the id again (a retry) is a duplicate: not delivered a second time.
      delivered.delete(messageId);
      await run([event({ messageId, event: 'Order Completed (retry)' })]);
      expect(delivered.has(messageId)).toBe(false);
    } finally {
      await reader.stop({ deadlineMs: 2000 });
    }
  });
});
