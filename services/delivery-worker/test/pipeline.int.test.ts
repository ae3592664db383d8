import { createHash, randomBytes } from 'node:crypto';
import { publishTo } from '@signal/bus';
import { type DeliveryMessage, topics } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDlqStore } from '../src/index';
import { createHarness, type Harness, makeEvent, SIGNING_SECRET, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';

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

async function metric(harness: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const json = await harness.metrics.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  let sum = 0;
  for (const v of (m?.values ?? []) as { labels: Record<string, string | number>; value: number }[]) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
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
    const dlq = createDlqStore(h.db);
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
      const dlq = createDlqStore(h.db);
      await waitFor(async () => (await dlq.list({ integrationId })).length === 1, 'the dead letter');
      const [entry] = await dlq.list({ integrationId });
      expect(entry).toMatchObject({ error: 'tls_error', lastResponse: { errorCode: refusal.code } });
      expect(sink.requests).toHaveLength(0);
    });
  }
});

describe('stage-2 consent', () => {
  it('a revocation that arrives between ingestion and delivery wins', async () => {
    const own = await createHarness();
    try {
      const sink = await goodSink();
      const pipelineId = id('pl');
      const integrationId = webhook(own, sink, { pipelineId });
      const granted = makeEvent({ pipelineId, timestamp: new Date(Date.now() - 1000).toISOString() });
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
        const read = await own.consentStore.get(granted.anonymousId ?? '');
        return read.status === 'found' && read.state.categories.marketing === false;
      }, 'the revocation in the consent store');
      await own.worker.start();
      await waitFor(
        async () => (await metric(own, 'signal_deliveries_total', { outcome: 'dropped' })) === 1,
        'the stage-2 drop',
      );
      expect(sink.requests).toHaveLength(0);
      expect(await metric(own, 'signal_consent_decisions_total', { stage: '2', decision: 'drop' })).toBe(1);
    } finally {
      await own.close();
    }
  });
});
