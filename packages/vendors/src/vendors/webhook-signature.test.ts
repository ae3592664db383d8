import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from './webhook-signature';

const SECRET = 'whsec-0123456789abcdefghijklmnopqrstuv';
const NOW = 1_795_176_000_000;

describe('webhook signatures', () => {
  it('match HMAC-SHA256 over "timestamp.body" as hex', () => {
    // openssl: printf '%s' '1795176000000.{"a":1}' | openssl dgst -sha256 -hmac "$SECRET"
    expect(signWebhook(SECRET, String(NOW), '{"a":1}')).toBe(
      'sha256=7fcd683b6f461afd74c8a977f466079924123d9eb3a5996836d51f7ae18a5245',
    );
  });

  it('verify what was signed and nothing else (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 500 }), fc.integer({ min: 0, max: 499 }), (body, position) => {
        const timestamp = String(NOW);
        const signature = signWebhook(SECRET, timestamp, body);
        expect(verifyWebhookSignature({ secrets: SECRET, signature, timestamp, body, now: NOW })).toEqual({
          ok: true,
        });
        if (body.length === 0) return;
        const index = position % body.length;
        const tampered = `${body.slice(0, index)}${body[index] === 'a' ? 'b' : 'a'}${body.slice(index + 1)}`;
        expect(
          verifyWebhookSignature({ secrets: SECRET, signature, timestamp, body: tampered, now: NOW }),
        ).toEqual({
          ok: false,
          reason: 'signature_mismatch',
        });
      }),
    );
  });

  it('refuse missing, malformed and stale input', () => {
    const body = '{}';
    const timestamp = String(NOW);
    const signature = signWebhook(SECRET, timestamp, body);
    const verify = (over: Partial<Parameters<typeof verifyWebhookSignature>[0]>) =>
      verifyWebhookSignature({ secrets: SECRET, signature, timestamp, body, now: NOW, ...over });
    expect(verify({ signature: undefined })).toEqual({ ok: false, reason: 'missing_signature' });
    expect(verify({ timestamp: '' })).toEqual({ ok: false, reason: 'missing_timestamp' });
    expect(verify({ signature: 'md5=abc' })).toEqual({ ok: false, reason: 'malformed_signature' });
    expect(verify({ timestamp: 'yesterday' })).toEqual({ ok: false, reason: 'timestamp_out_of_range' });
    expect(verify({ now: NOW + 5 * 60_000 + 1 })).toEqual({ ok: false, reason: 'timestamp_out_of_range' });
    expect(verify({ now: NOW - 5 * 60_000 })).toEqual({ ok: true });
  });

  it('accept any of several signatures and any of several secrets (rotation)', () => {
    const body = '{"rotate":true}';
    const timestamp = String(NOW);
    const both = signWebhook([SECRET, 'whsec-old-0123456789abcdefghijklmnopq'], timestamp, body);
    expect(both.split(', ')).toHaveLength(2);
    for (const secrets of [SECRET, 'whsec-old-0123456789abcdefghijklmnopq', ['x'.repeat(32), SECRET]]) {
      expect(verifyWebhookSignature({ secrets, signature: both, timestamp, body, now: NOW })).toEqual({
        ok: true,
      });
    }
  });
});
