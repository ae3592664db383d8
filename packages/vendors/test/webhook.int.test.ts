import { canonicalEventSchema } from '@signal/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createIntegration,
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  VendorConfigError,
  verifyWebhookSignature,
  webhook,
} from '../src/index';
import { NOW, now, purchase } from './fixtures';
import { hashed } from './helpers';
import { createTlsHarness, type RecordedRequest, type TlsHarness, type VendorSink } from './vendor-sink';

const SECRET = 'whsec-current-0123456789abcdefghijklmn';
const OLD_SECRET = 'whsec-previous-0123456789abcdefghijklm';
let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

function hook(settings: Record<string, unknown> = {}, credentials: Record<string, unknown> = {}) {
  return createIntegration(webhook, {
    settings: { url: `${sink.origin}/hooks/signal?source=shop`, ...settings },
    credentials: { signingSecret: SECRET, ...credentials },
  });
}

function header(request: RecordedRequest | undefined, name: string): string | undefined {
  const value = request?.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** What a receiver does with the request, using only what it received and its own secret(s). */
function receive(request: RecordedRequest | undefined, secrets: string | string[], clock = NOW) {
  return verifyWebhookSignature({
    secrets,
    signature: header(request, SIGNATURE_HEADER),
    timestamp: header(request, TIMESTAMP_HEADER),
    body: request?.body ?? '',
    now: clock,
  });
}

describe('signed webhook', () => {
  it('posts the canonical event, signed, with the message id as idempotency key', async () => {
    sink.reply(() => ({ status: 202 }));
    const report = await hook().deliver([purchase()], { transport: { dispatcher: tls.dispatcher }, now });

    expect(report.outcomes).toEqual([{ kind: 'delivered', messageId: 'msg-0001' }]);
    const [request] = sink.requests;
    expect(request?.url).toBe('/hooks/signal?source=shop');
    expect(header(request, IDEMPOTENCY_HEADER)).toBe('msg-0001');
    expect(header(request, TIMESTAMP_HEADER)).toBe(String(NOW));
    expect(header(request, SIGNATURE_HEADER)).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(header(request, 'content-type')).toBe('application/json');
    expect(receive(request, SECRET)).toEqual({ ok: true });

    // The body is a canonical event, with e-mail and phone hashed by the default (Meta) profile.
    const body = canonicalEventSchema.parse(sink.json());
    expect(body.messageId).toBe('msg-0001');
    expect(body.traits.email).toBe(hashed('meta', 'em', 'John.Smith@Gmail.com'));
    expect(body.traits.phone).toBe(hashed('meta', 'ph', '+44 7700 900123'));
    expect(body.traits.firstName).toBe('John');
    expect(body.properties).toEqual(purchase().properties);
  });

  it('is refused by a receiver when body, timestamp or secret do not match, or the request is stale', async () => {
    sink.reply(() => ({ status: 200 }));
    await hook().deliver([purchase()], { transport: { dispatcher: tls.dispatcher }, now });
    const request = sink.requests[0];
    if (request === undefined) throw new Error('no request');

    expect(receive({ ...request, body: request.body.replace('T-1001', 'T-9999') }, SECRET)).toEqual({
      ok: false,
      reason: 'signature_mismatch',
    });
    expect(
      receive({ ...request, headers: { ...request.headers, [TIMESTAMP_HEADER]: String(NOW + 1) } }, SECRET),
    ).toEqual({ ok: false, reason: 'signature_mismatch' });
    expect(receive(request, 'whsec-some-other-secret-0123456789abcd')).toEqual({
      ok: false,
      reason: 'signature_mismatch',
    });
    expect(receive(request, SECRET, NOW + 10 * 60_000)).toEqual({
      ok: false,
      reason: 'timestamp_out_of_range',
    });
  });

  it('signs with every secret during a rotation, so old and new receivers both accept', async () => {
    sink.reply(() => ({ status: 200 }));
    await hook({}, { additionalSigningSecrets: [OLD_SECRET] }).deliver([purchase()], {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    const [request] = sink.requests;
    expect(header(request, SIGNATURE_HEADER)?.split(', ')).toHaveLength(2);
    expect(receive(request, OLD_SECRET)).toEqual({ ok: true });
    expect(receive(request, SECRET)).toEqual({ ok: true });
    expect(receive(request, [OLD_SECRET, SECRET])).toEqual({ ok: true });
  });

  it('sends one request per event, extra headers and a bearer token when configured', async () => {
    sink.reply(() => ({ status: 200 }));
    const events = [
      purchase(),
      purchase((e) => {
        e.messageId = 'msg-0002';
      }),
    ];
    const report = await hook(
      { headers: { 'X-Tenant': 'shop-eu' } },
      { bearerToken: 'receiver-token-1234' },
    ).deliver(events, { transport: { dispatcher: tls.dispatcher }, now });
    expect(report.requests).toHaveLength(2);
    expect(sink.requests.map((r) => header(r, IDEMPOTENCY_HEADER))).toEqual(['msg-0001', 'msg-0002']);
    expect(header(sink.requests[0], 'x-tenant')).toBe('shop-eu');
    expect(header(sink.requests[0], 'authorization')).toBe('Bearer receiver-token-1234');
  });

  it('hashes the configured paths with the configured profile and removes what cannot be normalised', async () => {
    sink.reply(() => ({ status: 200 }));
    const integration = hook({
      hashing: { profile: 'google', fields: { 'traits.email': 'email', 'traits.address.street': 'street' } },
    });
    const event = purchase((e) => {
      e.traits.email = 'not an e-mail';
    });
    await integration.deliver([event], { transport: { dispatcher: tls.dispatcher }, now });
    const body = sink.json() as { traits: { email?: string; phone?: string; address: { street: string } } };
    expect(body.traits.email).toBeUndefined();
    expect(body.traits.address.street).toBe(hashed('google', 'street', '1 Main Street'));
    // Not listed for this integration: sent as the Org Data Layer left it.
    expect(body.traits.phone).toBe('+44 7700 900123');
  });

  it('refuses settings that would override Signal headers or hash into unknown profile fields', () => {
    expect(() => hook({ headers: { 'X-Signal-Signature': 'forged' } })).toThrow(VendorConfigError);
    expect(() => hook({ hashing: { profile: 'meta', fields: { 'traits.email': 'email' } } })).toThrow(
      /must be a field of the meta profile/,
    );
    expect(() => hook({ url: 'http://plain.example/hook' })).toThrow(/https/);
    expect(() => hook({}, { signingSecret: 'short' })).toThrow(VendorConfigError);
  });
});
