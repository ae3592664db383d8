import { describe, expect, it } from 'vitest';
import {
  acceptsLast,
  canonicalEventSchema,
  type EventInput,
  eventInputSchema,
  eventKey,
  ipSchema,
  isIp,
  isIsoTimestamp,
  isoTimestampSchema,
  type ServerStamp,
  stampEvent,
} from './event';

const browserStamp: ServerStamp = {
  org: 'org_1',
  pipelineId: 'pl_1',
  provenance: 'pipeline_key',
  receivedAt: '2025-01-02T03:04:05.678Z',
  messageId: 'gen-0001',
  anonymousId: 'dfid-cookie',
  ip: '203.0.113.7',
  userAgent: 'Mozilla/5.0 (header)',
};

function input(body: unknown): EventInput {
  return eventInputSchema.parse(body);
}

function stamped(body: unknown, stamp: ServerStamp = browserStamp) {
  const result = stampEvent(input(body), stamp);
  if (!result.success) throw new Error(JSON.stringify(result.error.issues));
  return result.data;
}

describe('eventInputSchema', () => {
  it('takes a Datafly.js track call and drops keys it does not know (pipelineKey among them)', () => {
    const parsed = input({
      type: 'track',
      event: 'Order Completed',
      anonymousId: 'a-1',
      userId: null,
      messageId: '6f1c2c3e-0d4b-4c84-9c1c-9f5a4e3b2a10',
      properties: { total: 42.5, currency: 'EUR' },
      context: {
        page: { url: 'https://shop.example/checkout', referrer: '' },
        consent: { categories: { analytics: true, marketing: false }, gpc: true, usPrivacy: '1YNN' },
        clickIds: { gclid: 'Cj0KCQ', fbp: 'fb.1.1700000000.123' },
        library: { name: 'datafly.js', version: '1.0.0' },
      },
      timestamp: '2025-01-02T03:04:00.000+01:00',
      pipelineKey: 'dk_live_abc',
      somethingElse: 1,
    });
    expect(parsed).not.toHaveProperty('pipelineKey');
    expect(parsed).not.toHaveProperty('somethingElse');
    expect(parsed.userId).toBeNull();
    expect(parsed.context?.consent?.categories).toEqual({ analytics: true, marketing: false });
  });

  it('requires an event name for track and a groupId for group', () => {
    const track = eventInputSchema.safeParse({ type: 'track', anonymousId: 'a' });
    expect(track.error?.issues.map((i) => i.path)).toEqual([['event']]);
    const group = eventInputSchema.safeParse({ type: 'group', anonymousId: 'a' });
    expect(group.error?.issues.map((i) => i.path)).toEqual([['groupId']]);
    expect(eventInputSchema.safeParse({ type: 'page' }).success).toBe(true);
    expect(eventInputSchema.safeParse({ type: 'screen', event: 'x' }).success).toBe(false);
  });

  it('refuses oversized or malformed fields instead of passing them on', () => {
    const bad = [
      { type: 'page', context: { userAgent: 'x'.repeat(1025) } },
      { type: 'page', context: { page: { url: `https://a.example/${'x'.repeat(8200)}` } } },
      { type: 'page', messageId: 'has space' },
      { type: 'page', messageId: 'x'.repeat(129) },
      { type: 'page', timestamp: '2025-01-02T03:04:05' }, // no zone: ambiguous by hours
      { type: 'page', context: { consent: { usPrivacy: 'YES' } } },
      { type: 'page', context: { consent: { tcf: 'CP\u0000x' } } },
      { type: 'page', context: { consent: { gppSid: Array.from({ length: 33 }, (_, i) => i) } } },
      { type: 'page', context: { clickIds: { 'bad name': 'x' } } },
      {
        type: 'page',
        context: { clickIds: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`c${i}`, 'v'])) },
      },
      { type: 'page', context: { ip: 'not-an-ip' } },
      { type: 'identify', userId: '', traits: {} },
      {
        type: 'identify',
        userId: 'u',
        traits: { deep: { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } } },
      },
      { type: 'track', event: 'x', properties: [] },
    ];
    for (const body of bad)
      expect(eventInputSchema.safeParse(body).success, JSON.stringify(body)).toBe(false);
  });
});

describe('stampEvent', () => {
  it('builds a canonical browser event: request IP, UA header and _dfid cookie win over the body', () => {
    const event = stamped({
      type: 'track',
      event: 'Signup',
      anonymousId: 'js-generated',
      context: { ip: '198.51.100.1', userAgent: 'Body UA' },
    });
    expect(event).toEqual({
      type: 'track',
      event: 'Signup',
      anonymousId: 'dfid-cookie',
      messageId: 'gen-0001',
      properties: {},
      traits: {},
      context: {
        ip: '203.0.113.7',
        userAgent: 'Mozilla/5.0 (header)',
        consent: {},
        provenance: 'pipeline_key',
      },
      timestamp: browserStamp.receivedAt,
      receivedAt: browserStamp.receivedAt,
      org: 'org_1',
      pipelineId: 'pl_1',
    });
  });

  it('keeps the client messageId and timestamp, and the body UA when the request had none', () => {
    const { userAgent: _ua, ...noHeader } = browserStamp;
    const event = stamped(
      {
        type: 'page',
        messageId: 'm-1',
        timestamp: '2025-01-01T00:00:00Z',
        context: { userAgent: 'Body UA' },
      },
      noHeader,
    );
    expect(event.messageId).toBe('m-1');
    expect(event.timestamp).toBe('2025-01-01T00:00:00Z');
    expect(event.context.userAgent).toBe('Body UA');
  });

  it('for an HMAC server source, trusts the body and never uses the source server address', () => {
    const serverStamp: ServerStamp = {
      org: 'org_1',
      pipelineId: 'pl_1',
      provenance: 'hmac',
      receivedAt: browserStamp.receivedAt,
      messageId: 'gen-2',
      ip: '10.0.0.5',
      userAgent: 'node-fetch',
    };
    const withVisitor = stamped(
      {
        type: 'identify',
        userId: 'u-9',
        anonymousId: 'a-9',
        context: { ip: '2001:db8::1', userAgent: 'Visitor UA' },
      },
      serverStamp,
    );
    expect(withVisitor.context).toEqual({
      ip: '2001:db8::1',
      userAgent: 'Visitor UA',
      consent: {},
      provenance: 'hmac',
    });
    const bare = stamped({ type: 'identify', userId: 'u-9' }, serverStamp);
    expect(bare.context.ip).toBeUndefined();
    expect(bare.context.userAgent).toBeUndefined();
    expect(bare).not.toHaveProperty('anonymousId');
  });

  it('fails, as a value, when the event identifies nobody', () => {
    const { anonymousId: _cookie, ...noCookie } = browserStamp;
    const result = stampEvent(input({ type: 'page', userId: null }), noCookie);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('an event needs an anonymousId or a userId');
  });

  it('click ids found in the page URL never push an event over the click-id limit', () => {
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`c${i}`, 'v']));
    const result = stampEvent(input({ type: 'page', context: { clickIds: sixteen } }), browserStamp, {
      clickIds: { gclid: 'G1', c3: 'from-url' },
      gpc: false,
    });
    expect(result.success).toBe(true);
    const ids = result.data?.context.clickIds ?? {};
    expect(Object.keys(ids)).toHaveLength(16);
    // The gateway's own findings come first; the client's fill the rest.
    expect(ids).toMatchObject({ gclid: 'G1', c3: 'from-url', c0: 'v' });
  });

  it('produces events that survive the wire unchanged', () => {
    const event = stamped({
      type: 'group',
      groupId: 'acme',
      traits: { plan: 'pro', seats: 12, tags: ['b2b'] },
      context: { page: { url: 'https://a.example/', title: 'Home', path: '/', search: '' }, locale: 'de-DE' },
    });
    const wire = JSON.parse(JSON.stringify(event)) as unknown;
    expect(canonicalEventSchema.parse(wire)).toEqual(event);
  });
});

describe('eventKey', () => {
  it('keys by anonymous id, else by a prefixed user id', () => {
    expect(eventKey({ anonymousId: 'a', userId: 'u' })).toBe('a');
    expect(eventKey({ userId: 'u' })).toBe('user:u');
    expect(() => eventKey({})).toThrow(TypeError);
  });
});

describe('isIsoTimestamp / isIp', () => {
  it('refuse a value that is not a string before any value was accepted', () => {
    // Fresh predicates: nothing remembered yet.
    expect(acceptsLast(isoTimestampSchema)(undefined as unknown as string)).toBe(false);
    expect(acceptsLast(ipSchema)(undefined as unknown as string)).toBe(false);
  });

  it('give the schema verdict for every value, also right after a value was accepted', () => {
    const timestamps = [
      '2025-01-02T03:04:05.678Z',
      '2025-01-02T03:04:05.678Z',
      'yesterday',
      'yesterday',
      '2025-13-02T03:04:05Z',
      '2025-01-02T03:04:05+01:00',
      '2025-01-02T03:04:05.678Z',
      '',
    ];
    for (const t of timestamps) expect(isIsoTimestamp(t)).toBe(isoTimestampSchema.safeParse(t).success);
    const ips = ['203.0.113.7', '203.0.113.7', '999.1.1.1', '999.1.1.1', '::1', 'not-an-ip', '203.0.113.7'];
    for (const ip of ips) expect(isIp(ip)).toBe(ipSchema.safeParse(ip).success);
  });
});
