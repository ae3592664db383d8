import { createHash, randomBytes } from 'node:crypto';
import { publishTo } from '@signal/bus';
import { normaliseConsent } from '@signal/consent';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { verifyWebhookSignature } from '@signal/vendors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDlqStore } from '../src/index';
import { createHarness, type Harness, makeEvent, SIGNING_SECRET, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const id = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

let pki: TestPki;
let ca: TestCa;
let h: Harness;
const sinks: HttpsSink[] = [];

async function goodSink(): Promise<HttpsSink> {
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  const sink = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  sinks.push(sink);
  return sink;
}

function webhook(
  harness: Harness,
  sink: HttpsSink,
  options: { pipelineId: string; consent?: object; pipeline?: object[] },
) {
  const integrationId = id('wh');
  harness.control.addIntegration({
    id: integrationId,
    pipelineId: options.pipelineId,
    vendor: 'webhook',
    enabled: true,
    settings: { url: sink.url },
    consent: (options.consent ?? { category: 'marketing' }) as never,
    ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline as never }),
    extraCaPem: ca.certPem,
    credentials: { signingSecret: SIGNING_SECRET },
  });
  return integrationId;
}

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Worker Test CA' });
  h = await createHarness();
  await h.processor.start();
  await h.worker.start();
});

afterAll(async () => {
  await h?.close();
  for (const sink of sinks) await sink.close();
  await pki?.cleanup();
});

describe('processor → worker → HTTPS vendor, end to end', () => {
  it('hashes the Org Data Layer PII fields before the event leaves, and reloads a new config version', async () => {
    const sink = await goodSink();
    const org = id('org');
    const pipelineId = id('pl');
    webhook(h, sink, { pipelineId });
    h.control.dataLayers.set(org, {
      version: 1,
      pii_rules: { hash_fields: ['traits.first_name', 'traits.email'] },
    });
    await h.publishRaw([makeEvent({ org, pipelineId })]);
    await waitFor(() => sink.requests.length === 1, 'the first delivery');
    const first = JSON.parse(sink.requests[0]?.body ?? '{}');
    expect(first.traits).toEqual({ email: sha256('jane.doe@example.com'), first_name: sha256('jane') });
    expect(sink.requests[0]?.body).not.toMatch(/Jane/i);

    h.control.dataLayers.set(org, {
      version: 2,
      pii_rules: { hash_fields: ['traits.first_name', 'traits.email'], redact_fields: ['properties.coupon'] },
    });
    await h.publishRaw([makeEvent({ org, pipelineId, properties: { coupon: 'SPRING-25', value: 1 } })]);
    await waitFor(() => sink.requests.length === 2, 'the delivery under version 2');
    expect(JSON.parse(sink.requests[1]?.body ?? '{}').properties).toEqual({ coupon: '***', value: 1 });
  });

  it('drops at stage 1 without consent, and strips personal data when only the user-data gate fails', async () => {
    const marketingSink = await goodSink();
    const analyticsSink = await goodSink();
    const pipelineId = id('pl');
    webhook(h, marketingSink, { pipelineId, consent: { category: 'marketing' } });
    webhook(h, analyticsSink, {
      pipelineId,
      consent: { category: 'analytics', userData: { category: 'marketing' } },
    });
    const event = makeEvent({
      pipelineId,
      userId: 'user-7',
      properties: { value: 9, email: 'x@example.com' },
      context: { ...makeEvent().context, consent: { categories: { analytics: true, marketing: false } } },
    });
    await h.publishRaw([event]);
    await waitFor(() => analyticsSink.requests.length === 1, 'the stripped delivery');
    const body = JSON.parse(analyticsSink.requests[0]?.body ?? '{}');
    expect(body.traits).toEqual({});
    expect(body.userId).toBeUndefined();
    expect(body.context.ip).toBeUndefined();
    expect(body.properties).toEqual({ value: 9 });
    expect(body.anonymousId).toBe(event.anonymousId);
    expect(marketingSink.requests).toHaveLength(0);
    expect(
      await metric(h, 'signal_consent_decisions_total', { stage: '1', decision: 'drop' }),
    ).toBeGreaterThan(0);
  });

  it('deduplicates a messageId seen twice', async () => {
    const sink = await goodSink();
    const pipelineId = id('pl');
    webhook(h, sink, { pipelineId });
    const event = makeEvent({ pipelineId });
    await h.publishRaw([event]);
    await h.publishRaw([event, makeEvent({ pipelineId })]);
    await waitFor(() => sink.requests.length === 2, 'two distinct deliveries');
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.countByMessage().get(event.messageId)).toBe(1);
  });

  it('routes by condition: a server-events-only integration never sees browser events', async () => {
    const sink = await goodSink();
    const org = id('org');
    const pipelineId = id('pl');
    const integrationId = webhook(h, sink, { pipelineId });
    h.control.dataLayers.set(org, {
      version: 1,
      routing_rules: [
        {
          name: 'server events only',
          integrations: [integrationId],
          action: 'exclude',
          condition: { not: { field: 'context.provenance', op: 'eq', value: 'hmac' } },
        },
      ],
    });
    const browser = makeEvent({ org, pipelineId });
    const server = makeEvent({ org, pipelineId, context: { ...makeEvent().context, provenance: 'hmac' } });
    await h.publishRaw([browser, server]);
    await waitFor(() => sink.requests.length === 1, 'the server event');
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.requests.map((r) => r.messageId)).toEqual([server.messageId]);
  });

  it('never re-sends an event the ledger shows as accepted (a redelivered message)', async () => {
    const sink = await goodSink();
    const pipelineId = id('pl');
    const integrationId = webhook(h, sink, { pipelineId });
    const event = makeEvent({ pipelineId });
    await h.publishRaw([event]);
    await waitFor(() => sink.requests.length === 1, 'the delivery');
    const before = await metric(h, 'signal_delivery_skipped_total');
    const again: DeliveryMessage = { integrationId, event, attempt: { number: 1 } };
    await publishTo(h.bus, topics.delivery(h.namespace, integrationId), [again, again]);
    await waitFor(async () => (await metric(h, 'signal_delivery_skipped_total')) > before, 'the ledger skip');
    expect(sink.requests).toHaveLength(1);
  });

  it('dead-letters events whose credentials ciphertext was moved from another integration', async () => {
    const sink = await goodSink();
    const pipelineId = id('pl');
    const victim = webhook(h, sink, { pipelineId: id('other') });
    const thief = webhook(h, sink, { pipelineId });
    const stolen = h.control.integrations.get(thief);
    const original = h.control.integrations.get(victim);
    if (stolen === undefined || original === undefined) throw new Error('fixture');
    stolen.credentials = original.credentials;
    await h.publishRaw([makeEvent({ pipelineId })]);
    const dlq = createDlqStore(h.db, h.control.crypto);
    await waitFor(async () => (await dlq.list({ integrationId: thief })).length === 1, 'the dead letter');
    const [entry] = await dlq.list({ integrationId: thief });
    expect(entry?.error).toBe('credentials_unreadable');
    expect(entry?.details).not.toContain(SIGNING_SECRET);
    expect(JSON.stringify(entry?.original)).not.toMatch(/jane/i);
    expect(sink.requests).toHaveLength(0);
  });
});

describe('strict TLS towards vendors', () => {
  const refusals = [
    {
      name: 'an expired certificate',
      code: 'CERT_HAS_EXPIRED',
      tls: async () => {
        const c = await ca.issueServerCertificate({
          ipAddresses: ['127.0.0.1'],
          notBefore: new Date(Date.now() - 20 * 86_400_000),
          notAfter: new Date(Date.now() - 86_400_000),
        });
        return { cert: c.certPem, key: c.keyPem };
      },
    },
    {
      name: 'an unknown CA',
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      tls: async () => {
        const other = await pki.createCa({ commonName: 'Unknown CA' });
        const c = await other.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
        return { cert: c.certPem, key: c.keyPem };
      },
    },
    {
      name: 'a certificate for another host',
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      tls: async () => {
        const c = await ca.issueServerCertificate({ dnsNames: ['vendor.example'], ipAddresses: [] });
        return { cert: c.certPem, key: c.keyPem };
      },
    },
    {
      name: 'a TLS 1.0/1.1-only server',
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
      tls: async () => {
        const c = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
        return {
          cert: c.certPem,
          key: c.keyPem,
          minVersion: 'TLSv1' as const,
          maxVersion: 'TLSv1.1' as const,
          ciphers: 'DEFAULT@SECLEVEL=0',
        };
      },
    },
  ];
  for (const refusal of refusals) {
    it(`refuses ${refusal.name}: nothing delivered, dead-lettered as tls_error (${refusal.code})`, async () => {
      const sink = await startHttpsSink(await refusal.tls());
      sinks.push(sink);
      const pipelineId = id('pl');
      const integrationId = webhook(h, sink, { pipelineId });
      await h.publishRaw([makeEvent({ pipelineId })]);
      const dlq = createDlqStore(h.db, h.control.crypto);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter');
      const [entry] = await dlq.list({ integrationId });
      expect(entry).toMatchObject({ error: 'tls_error', lastResponse: { errorCode: refusal.code } });
      expect(sink.requests).toHaveLength(0);
    });
  }
});

/**
 * A granted event reaches its delivery topic, then the visitor withdraws (a later event the processor records
 * in the consent store), then the worker starts: `prepare` may set the org's data layer first. Returns the
 * vendor's sink and the harness (closed by the caller).
 */
async function withdrawnBeforeDelivery(prepare: (own: Harness, org: string) => void = () => {}) {
  const own = await createHarness();
  const sink = await goodSink();
  const pipelineId = id('pl');
  const integrationId = webhook(own, sink, { pipelineId });
  const granted = makeEvent({ pipelineId, timestamp: new Date(Date.now() - 1000).toISOString() });
  prepare(own, granted.org);
  await own.processor.start();
  await own.publishRaw([granted]);
  const topic = topics.delivery(own.namespace, integrationId).name;
  await waitFor(async () => {
    const { rows } = await own.db.query<{ n: string }>(
      'SELECT COALESCE(sum(next_offset), 0)::text AS n FROM bus_partitions WHERE topic = $1',
      [topic],
    );
    return Number(rows[0]?.n ?? 0) === 1;
  }, 'the delivery message');
  // The visitor withdraws consent before the worker gets to the event.
  await own.publishRaw([
    makeEvent({
      pipelineId,
      anonymousId: granted.anonymousId,
      event: 'Consent Updated',
      context: { ...granted.context, consent: { categories: { analytics: false, marketing: false } } },
    }),
  ]);
  await waitFor(async () => {
    const read = await own.consentStore.get(granted.org, granted.anonymousId ?? '');
    return read.status === 'found' && read.state.categories.marketing === false;
  }, 'the revocation in the consent store');
  await own.worker.start();
  await waitFor(
    async () => (await metric(own, 'signal_deliveries_total', { outcome: 'dropped' })) === 1,
    'the stage-2 drop',
  );
  return { own, sink };
}

describe('stage-2 consent', () => {
  it('a revocation that arrives between ingestion and delivery wins', async () => {
    const { own, sink } = await withdrawnBeforeDelivery();
    try {
      expect(sink.requests).toHaveLength(0);
      expect(await metric(own, 'signal_consent_decisions_total', { stage: '2', decision: 'drop' })).toBe(1);
    } finally {
      await own.close();
    }
  });

  it('finds the visitor by the id the event arrived with when a rule changed it: a later withdrawal still wins', async () => {
    // The org hashes anonymous ids before they leave: the delivery message holds the hash, not the id the
    // visitor's consent state is stored under.
    const { own, sink } = await withdrawnBeforeDelivery((harness, org) => {
      harness.control.dataLayers.set(org, { version: 1, pii_rules: { hash_fields: ['anonymousId'] } });
    });
    try {
      expect(sink.requests).toHaveLength(0);
      expect(await metric(own, 'signal_consent_decisions_total', { stage: '2', decision: 'drop' })).toBe(1);
    } finally {
      await own.close();
    }
  });
});

describe('stage-2 consent reaches the vendor', () => {
  it('a withdrawal after ingestion is what GA4 and a webhook are told, and no hashed e-mail goes with it', async () => {
    const sink = await goodSink();
    const endpoint = new URL(sink.url).origin;
    const ga4 = (consent: object) => {
      const integrationId = id('ga4');
      h.control.addIntegration({
        id: integrationId,
        pipelineId: id('pl'),
        vendor: 'ga4',
        enabled: true,
        settings: { measurementId: 'G-ABC123XYZ', endpoint },
        consent: consent as never,
        extraCaPem: ca.certPem,
        credentials: { apiSecret: 'secret-0123456789' },
      });
      return integrationId;
    };
    // Analytics only (delivered, user data not gated), and the shipped GA4 shape (user data gated: strip).
    const plain = ga4({ category: 'analytics' });
    const gated = ga4({ category: 'analytics', userData: { category: 'marketing' } });
    const hook = webhook(h, sink, { pipelineId: id('pl'), consent: { category: 'analytics' } });

    const anonymousId = id('anon-revoker');
    const minuteAgo = new Date(Date.now() - 60_000).toISOString();
    const event = makeEvent({
      anonymousId,
      event: 'purchase',
      timestamp: minuteAgo,
      receivedAt: minuteAgo,
      traits: { email: 'jane.doe@example.com' },
      context: {
        ...makeEvent().context,
        consent: { categories: { analytics: true, marketing: true, personalization: true } },
      },
    });
    // Marketing and personalisation withdrawn after the event was ingested.
    await h.consentStore.set(
      event.org,
      anonymousId,
      normaliseConsent(
        { categories: { analytics: true, marketing: false, personalization: false } },
        { observedAt: Date.now() - 1000 },
      ),
    );
    for (const integrationId of [plain, gated, hook]) {
      await publishTo(h.bus, topics.delivery(h.namespace, integrationId), [
        { integrationId, event, attempt: { number: 1 } } satisfies DeliveryMessage,
      ]);
    }
    await waitFor(() => sink.requests.length === 3, 'two GA4 requests and a webhook');
    const bodies = sink.requests.map((r) => JSON.parse(r.body));
    const ga4Bodies = bodies.filter((b) => b.client_id !== undefined);
    expect(ga4Bodies).toHaveLength(2);
    for (const body of ga4Bodies) {
      expect(body.consent).toEqual({ ad_user_data: 'DENIED', ad_personalization: 'DENIED' });
      expect(body.user_data).toBeUndefined();
    }
    const hooked = bodies.find((b) => b.messageId === event.messageId);
    expect(hooked?.context.consent.categories).toMatchObject({
      analytics: true,
      marketing: false,
      personalization: false,
    });
    expect(JSON.stringify(bodies)).not.toMatch(/jane/i);
  });
});

describe('credentials rotation', () => {
  it('after auth_failed the cached credentials are dropped: a rotated secret applies to the next event', async () => {
    const OLD = 'whsec_old_0123456789abcdefghijklmnop';
    const NEW = 'whsec_new_0123456789abcdefghijklmnop';
    // Credentials cached for a minute, as in production (the shared harness caches nothing).
    const own = await createHarness({ workerSettings: { credentialsTtlMs: 60_000 } });
    try {
      const sink = await goodSink();
      sink.reply((request) => {
        const signature = request.headers['x-signal-signature'];
        const timestamp = request.headers['x-signal-timestamp'];
        const verified = verifyWebhookSignature({
          secrets: NEW,
          signature: typeof signature === 'string' ? signature : undefined,
          timestamp: typeof timestamp === 'string' ? timestamp : undefined,
          body: request.body,
        });
        return verified.ok ? { status: 200, body: '{}' } : { status: 401, body: '{}' };
      });
      const integrationId = webhook(own, sink, { pipelineId: id('pl') });
      const stored = own.control.integrations.get(integrationId);
      if (stored === undefined) throw new Error('fixture');
      stored.credentials = own.control.sealCredentials(integrationId, { signingSecret: OLD });
      await own.worker.start();
      const topic = topics.delivery(own.namespace, integrationId);
      const first = makeEvent();
      await publishTo(own.bus, topic, [{ integrationId, event: first, attempt: { number: 1 } }]);
      const dlq = createDlqStore(own.db, own.control.crypto);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the auth_failed letter');
      expect((await dlq.list({ integrationId }))[0]?.error).toBe('auth_failed');

      // The operator rotates the secret.
      stored.credentials = own.control.sealCredentials(integrationId, { signingSecret: NEW });
      const second = makeEvent();
      await publishTo(own.bus, topic, [{ integrationId, event: second, attempt: { number: 1 } }]);
      await waitFor(
        async () => (await metric(own, 'signal_deliveries_total', { outcome: 'delivered' })) === 1,
        'the delivery with the new secret',
        10_000,
      );
      expect(sink.requests.map((r) => r.messageId)).toEqual([first.messageId, second.messageId]);
      expect(await dlq.list({ integrationId })).toHaveLength(1);
    } finally {
      await own.close();
    }
  });
});
