import { describe, expect, it } from 'vitest';
import { HMAC_MAX_SKEW_MS, signBody, verifyHmac } from './hmac';

const secret = Buffer.from('s3cret-s3cret-s3cret-s3cret-s3cr');
const previous = Buffer.from('old-secret-old-secret-old-secret');
const body = Buffer.from('{"type":"track","event":"purchase"}');
const now = 1_750_000_000_000;
const ts = String(now);

function verify(overrides: Partial<Parameters<typeof verifyHmac>[0]> = {}) {
  return verifyHmac({
    signature: `sha256=${signBody(secret, ts, body)}`,
    timestamp: ts,
    rawBody: body,
    secrets: [secret],
    nowMs: now,
    ...overrides,
  });
}

describe('verifyHmac', () => {
  it('accepts a correct signature over timestamp + "." + raw body', () => {
    expect(verify()).toMatchObject({ ok: true, timestampMs: now, secretIndex: 0 });
  });

  it('accepts an upper-case hex signature', () => {
    expect(verify({ signature: `sha256=${signBody(secret, ts, body).toUpperCase()}` }).ok).toBe(true);
  });

  it('accepts the previous secret during rotation and says which matched', () => {
    const signature = `sha256=${signBody(previous, ts, body)}`;
    expect(verify({ signature, secrets: [secret, previous] })).toMatchObject({ ok: true, secretIndex: 1 });
  });

  it.each([
    ['missing_signature', { signature: undefined }],
    ['malformed_signature', { signature: 'sha1=abc' }],
    ['malformed_signature', { signature: `sha256=${'a'.repeat(63)}` }],
    ['missing_timestamp', { timestamp: undefined }],
    ['malformed_timestamp', { timestamp: '2025-01-01T00:00:00Z' }],
    ['timestamp_skew', { nowMs: now + HMAC_MAX_SKEW_MS + 1 }],
    ['timestamp_skew', { nowMs: now - HMAC_MAX_SKEW_MS - 1 }],
    ['bad_signature', { rawBody: Buffer.from('{"type":"track","event":"refund"}') }],
    ['bad_signature', { secrets: [previous] }],
    ['bad_signature', { secrets: [] }],
  ] as const)('refuses with %s', (reason, overrides) => {
    expect(verify(overrides)).toEqual({ ok: false, reason });
  });

  it('binds the timestamp: a signature replayed with another timestamp fails', () => {
    const later = String(now + 1000);
    expect(verify({ timestamp: later, nowMs: now + 1000 })).toEqual({ ok: false, reason: 'bad_signature' });
  });
});
