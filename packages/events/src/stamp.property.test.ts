import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  type CanonicalEvent,
  canonicalEventSchema,
  type EventInput,
  eventInputSchema,
  type ServerStamp,
  stampEvent,
} from './event';

/**
 * `stampEvent` validates each event once (see its comment). This holds it to what it did before, when every
 * stamped event went through `canonicalEventSchema` whole: the same bytes for every accepted event and the
 * same issues for every refused one, over random inputs, stamps and gateway enrichment.
 */
function referenceStamp(input: EventInput, stamp: ServerStamp): z.ZodSafeParseResult<CanonicalEvent> {
  const fromServerSource = stamp.provenance === 'hmac';
  const ctx = input.context;
  const pick = <T>(...values: (T | null | undefined)[]): T | undefined =>
    values.find((v) => v !== undefined && v !== null) ?? undefined;
  const context = Object.fromEntries(
    Object.entries({
      ip: fromServerSource ? ctx?.ip : stamp.ip,
      userAgent: fromServerSource ? ctx?.userAgent : pick(stamp.userAgent, ctx?.userAgent),
      page: ctx?.page,
      consent: ctx?.consent ?? {},
      provenance: stamp.provenance,
      clickIds: ctx?.clickIds,
      library: ctx?.library,
      locale: ctx?.locale,
    }).filter(([, v]) => v !== undefined),
  );
  const candidate = Object.fromEntries(
    Object.entries({
      type: input.type,
      event: pick(input.event),
      userId: pick(input.userId),
      anonymousId: fromServerSource
        ? pick(input.anonymousId, stamp.anonymousId)
        : pick(stamp.anonymousId, input.anonymousId),
      groupId: pick(input.groupId),
      messageId: input.messageId ?? stamp.messageId,
      properties: input.properties ?? {},
      traits: input.traits ?? {},
      context,
      timestamp: input.timestamp ?? stamp.receivedAt,
      receivedAt: stamp.receivedAt,
      org: stamp.org,
      pipelineId: stamp.pipelineId,
    }).filter(([, v]) => v !== undefined),
  );
  return canonicalEventSchema.safeParse(candidate);
}

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Mostly valid values, sometimes invalid ones, so both outcomes are common. */
const mostly = <T>(valid: readonly T[], invalid: readonly T[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...valid), weight: 15 },
    { arbitrary: fc.constantFrom(...invalid), weight: 1 },
  );
const id = mostly(['a', 'anon-1', 'x'.repeat(256), 'ü-ß'], ['x'.repeat(257), '']);
const json = fc.dictionary(
  fc.constantFrom('value', 'currency', 'items', 'email'),
  fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant([{ sku: 's', n: 1 }]), fc.constant(null)),
);
const consent = fc.record(
  {
    categories: fc.record(
      { analytics: fc.boolean(), marketing: fc.boolean(), essential: fc.boolean() },
      { requiredKeys: [] },
    ),
    tcf: mostly(['CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA'], ['has space']),
    gpp: fc.constantFrom('DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA'),
    gppSid: fc.array(fc.integer({ min: 0, max: 65_535 }), { maxLength: 3 }),
    gpc: fc.boolean(),
    usPrivacy: mostly(['1YNN'], ['bad']),
  },
  { requiredKeys: [] },
);
const body = fc.record(
  {
    type: fc.constantFrom('track', 'page', 'identify', 'group'),
    event: fc.oneof(fc.constantFrom('purchase', 'x'.repeat(256)), fc.constant(null)),
    userId: fc.oneof(id, fc.constant(null)),
    anonymousId: fc.oneof(id, fc.constant(null)),
    groupId: fc.oneof(id, fc.constant(null)),
    messageId: fc.constantFrom('m-1', 'm'.repeat(128)),
    properties: json,
    traits: json,
    context: fc.record(
      {
        ip: fc.constantFrom('198.51.100.1', '2001:db8::1'),
        userAgent: fc.constantFrom('Body UA', 'u'.repeat(1024)),
        page: fc.record(
          {
            url: fc.constantFrom('https://a.example/?gclid=g', 'https://b.example/'),
            title: fc.constant('T'),
            referrer: fc.constant('https://r.example/'),
          },
          { requiredKeys: ['url'] },
        ),
        consent,
        clickIds: fc.dictionary(fc.constantFrom('gclid', 'fbclid', 'ttclid'), fc.constantFrom('c1', 'c2')),
        library: fc.record({ name: fc.constant('datafly.js'), version: fc.constant('1.0.0') }),
        locale: fc.constantFrom('de-DE', 'l'.repeat(64)),
      },
      { requiredKeys: [] },
    ),
    timestamp: fc.constantFrom('2025-01-01T00:00:00Z', '2025-06-01T12:00:00.123+02:00'),
  },
  { requiredKeys: ['type'] },
);
const stamp = fc.record(
  {
    org: mostly(['org_1'], ['bad org']),
    pipelineId: mostly(['pl_1'], ['-bad']),
    provenance: fc.constantFrom('hmac', 'pipeline_key', 'pixel'),
    receivedAt: mostly(['2025-01-02T03:04:05.678Z'], ['not a time']),
    messageId: mostly(['8d1f5c3e-6a53-4c55-9f0a-0a4f6f1b2c3d'], ['has space', '']),
    anonymousId: maybe(id),
    ip: maybe(mostly(['203.0.113.7', '::ffff:127.0.0.1', '2001:db8::1'], ['not-an-ip'])),
    userAgent: maybe(mostly(['Mozilla/5.0', 'u'.repeat(1024)], ['u'.repeat(1025)])),
  },
  { requiredKeys: ['org', 'pipelineId', 'provenance', 'receivedAt', 'messageId'] },
);
/** What the gateway may change after validation: extra click ids, `Sec-GPC`, a skew-corrected timestamp. */
const enrichment: fc.Arbitrary<Enrichment> = fc.record({
  clickIds: fc.oneof(
    { arbitrary: fc.dictionary(fc.constantFrom('gclid', 'fbc', 'msclkid'), fc.constant('v')), weight: 10 },
    {
      arbitrary: fc.dictionary(
        fc.constantFrom('gclid', 'bad name', ...Array.from({ length: 17 }, (_, i) => `id${i}`)),
        fc.constantFrom('v', '', 'v'.repeat(1025), 'not printable'),
        { maxKeys: 18 },
      ),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(
        { gclid: '' },
        { gclid: 'v'.repeat(1025) },
        { gclid: 'not printable' },
        { 'bad name': 'v' },
      ),
      weight: 1,
    },
  ),
  gpc: fc.boolean(),
  timestamp: maybe(mostly(['2025-01-01T00:00:01.000Z'], ['+275760-09-13T00:00:00.000Z'])),
});

interface Enrichment {
  readonly clickIds: Record<string, string>;
  readonly gpc: boolean;
  readonly timestamp: string | undefined;
}

function enrich(input: EventInput, e: Enrichment): EventInput {
  const ctx = input.context ?? {};
  const clickIds = { ...(ctx.clickIds ?? {}), ...e.clickIds };
  const consentValue = e.gpc ? { ...(ctx.consent ?? {}), gpc: true } : ctx.consent;
  return {
    ...input,
    ...(e.timestamp !== undefined ? { timestamp: e.timestamp } : {}),
    context: {
      ...ctx,
      ...(Object.keys(clickIds).length > 0 ? { clickIds } : {}),
      ...(consentValue !== undefined ? { consent: consentValue } : {}),
    },
  };
}

describe('stampEvent (validated once)', () => {
  it('accepts exactly what the whole-schema check accepted, byte for byte, and refuses with the same issues', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(body, stamp, enrichment, (raw, s, e) => {
        const parsed = eventInputSchema.safeParse(raw);
        if (!parsed.success) return;
        const input = enrich(parsed.data, e);
        const serverStamp = s as ServerStamp;
        const expected = referenceStamp(input, serverStamp);
        const actual = stampEvent(input, serverStamp);
        // The gateway's way: the same enrichment handed to stampEvent instead of applied to a copy first.
        const enriched = stampEvent(parsed.data, serverStamp, {
          clickIds: e.clickIds,
          gpc: e.gpc,
          ...(e.timestamp !== undefined ? { timestamp: e.timestamp } : {}),
        });
        expect(actual.success).toBe(expected.success);
        expect(enriched.success).toBe(expected.success);
        if (expected.success) {
          accepted += 1;
          expect(JSON.stringify(actual.data)).toBe(JSON.stringify(expected.data));
          expect(JSON.stringify(enriched.data)).toBe(JSON.stringify(expected.data));
        } else {
          refused += 1;
          expect(actual.error?.issues).toEqual(expected.error.issues);
          expect(enriched.error?.issues).toEqual(expected.error.issues);
        }
      }),
      { numRuns: 3000 },
    );
    // Both sides of the comparison were exercised, not only one.
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });
});
