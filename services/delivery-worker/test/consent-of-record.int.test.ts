import { randomBytes } from 'node:crypto';
import type { CanonicalEvent } from '@signal/events';
import { createTestPki, type TestCa, type TestPki } from '@signal/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness, makeEvent, waitFor } from './support/harness';
import { type HttpsSink, startHttpsSink } from './support/https-sink';
import { metric } from './support/metric';

/**
 * A signed-in person's consent of record: the customer's server declares it with a signed `consent_update`
 * (account settings, an objection to direct marketing), and it holds for every event of that person, from
 * any device or server, however a device's CMP still reads. Only signed events write it: a browser's
 * pipeline key is public and its user id self-declared.
 */

let pki: TestPki;
let ca: TestCa;
let h: Harness;
let vendor: HttpsSink;
const ORG = `org_${randomBytes(4).toString('hex')}`;
const PIPELINE = `pl_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createCa({ commonName: 'Signal Consent Test CA' });
  h = await createHarness({
    workerSettings: { topicPartitions: 1, erasureRefreshMs: 100 },
    identityGraph: true,
  });
  // The org hashes user ids before they leave: the worker never sees the one the record is of.
  h.control.dataLayers.set(ORG, { version: 1, pii_rules: { hash_fields: ['userId'] } });
  const cert = await ca.issueServerCertificate({ ipAddresses: ['127.0.0.1'] });
  vendor = await startHttpsSink({ cert: cert.certPem, key: cert.keyPem });
  vendor.reply(() => ({ status: 200, body: '{}' }));
  h.control.addWebhook({ pipelineId: PIPELINE, url: vendor.url, caPem: ca.certPem });
  await h.processor.start();
  await h.worker.start();
});
afterAll(async () => {
  await h?.close();
  await vendor?.close();
  await pki?.cleanup();
});

/** An order of `userId` from a browser whose CMP grants marketing. */
function browserOrder(userId: string): CanonicalEvent {
  return makeEvent({ org: ORG, pipelineId: PIPELINE, userId });
}

/** A `consent_update` for `userId`, signed by the customer's server (`hmac`) or sent by a browser. */
function consentUpdate(
  userId: string,
  marketing: boolean,
  provenance: 'hmac' | 'pipeline_key',
): CanonicalEvent {
  const base = makeEvent({ org: ORG, pipelineId: PIPELINE, userId });
  return {
    ...base,
    event: 'consent_update',
    properties: { categories: { marketing } },
    context: { ...base.context, provenance },
  };
}

/** Publishes `events` one after another (each processed before the next: a record precedes what follows). */
async function sendInTurn(events: readonly CanonicalEvent[]): Promise<void> {
  for (const event of events) {
    const before = await metric(h, 'signal_processor_events_total', {});
    await h.publishRaw([event]);
    await waitFor(async () => (await metric(h, 'signal_processor_events_total', {})) > before, 'processed');
  }
}

const received = (event: CanonicalEvent) => vendor.requests.some((r) => r.messageId === event.messageId);

describe('a consent of record', () => {
  it("vetoes a withdrawn category for all the person's events; only a signed grant lifts it", async () => {
    const user = `ada.${randomBytes(4).toString('hex')}@example.com`;
    const someoneElse = browserOrder(`bob.${randomBytes(4).toString('hex')}@example.com`);
    const vetoed = browserOrder(user);
    // The server records the objection; then the person's browser, whose CMP says granted, sends an order.
    await sendInTurn([consentUpdate(user, false, 'hmac'), vetoed, someoneElse]);
    await waitFor(() => received(someoneElse), "the other person's order delivered");

    // A browser (anyone holding the public key) cannot lift it by claiming the user id.
    const forged = consentUpdate(user, true, 'pipeline_key');
    const stillVetoed = browserOrder(user);
    const marker = browserOrder(`carl.${randomBytes(4).toString('hex')}@example.com`);
    await sendInTurn([forged, stillVetoed, marker]);
    await waitFor(() => received(marker), 'a later order delivered');

    // The customer's server records a new grant: later events of the person go out again.
    const lifted = browserOrder(user);
    await sendInTurn([consentUpdate(user, true, 'hmac'), lifted]);
    await waitFor(() => received(lifted), 'the order after the signed grant');

    expect([vetoed, stillVetoed].map(received)).toEqual([false, false]);
    // What the vendor got never held the user id (the org hashes it; the record is named by a pseudonym).
    expect(vendor.requests.some((r) => r.body.includes(user))).toBe(false);
  });
});
