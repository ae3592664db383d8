import { describe, expect, it } from 'vitest';
import { checkTimes, MAX_TOKEN_TTL_SECONDS, newClaims, parseClaims, tokenContext } from './claims';

const INPUT = {
  anonymousId: '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f',
  org: 'org_demo',
  pipeline: 'pl_demo',
  from: 'site-a.localhost',
  aud: 'site-b.localhost',
};
const NOW = Date.parse('2026-03-01T12:00:00.400Z');

describe('claims', () => {
  it('carries the visitor, the pipeline, both sites and a 128-bit jti, valid for the configured lifetime', () => {
    const claims = newClaims(INPUT, NOW, 120);
    expect(claims).toMatchObject({
      anonymous_id: INPUT.anonymousId,
      org: 'org_demo',
      pipeline: 'pl_demo',
      from: 'site-a.localhost',
      aud: 'site-b.localhost',
      iat: 1_772_366_400,
      exp: 1_772_366_520,
    });
    expect(Buffer.from(claims.jti, 'base64url')).toHaveLength(16);
    expect(newClaims(INPUT, NOW, 30).exp - newClaims(INPUT, NOW, 30).iat).toBe(30);
  });

  it('draws a fresh jti for every token', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newClaims(INPUT, NOW, 60).jti));
    expect(ids.size).toBe(2000);
  });

  it('refuses a lifetime above 120 s or below 1 s', () => {
    expect(() => newClaims(INPUT, NOW, MAX_TOKEN_TTL_SECONDS + 1)).toThrow(RangeError);
    expect(() => newClaims(INPUT, NOW, 0)).toThrow(RangeError);
    expect(() => newClaims(INPUT, NOW, 1.5)).toThrow(RangeError);
  });

  it('refuses ids and hosts that are not ours', () => {
    expect(() => newClaims({ ...INPUT, anonymousId: 'short' }, NOW, 60)).toThrow();
    expect(() => newClaims({ ...INPUT, aud: 'B.example' }, NOW, 60)).toThrow();
    expect(() => newClaims({ ...INPUT, aud: 'b.example.' }, NOW, 60)).toThrow();
    expect(() => newClaims({ ...INPUT, from: 'a.example/x' }, NOW, 60)).toThrow();
  });
});

describe('checkTimes', () => {
  const claims = { iat: 1000, exp: 1120 };
  it('accepts from iat - skew until exp + skew (exclusive)', () => {
    expect(checkTimes(claims, 995_000, 5)).toBe('valid');
    expect(checkTimes(claims, 994_999, 5)).toBe('not_yet_valid');
    expect(checkTimes(claims, 1_124_999, 5)).toBe('valid');
    expect(checkTimes(claims, 1_125_000, 5)).toBe('expired');
    expect(checkTimes(claims, 1_120_000, 0)).toBe('expired');
    expect(checkTimes(claims, 1_119_999, 0)).toBe('valid');
  });
});

describe('parseClaims', () => {
  const valid = newClaims(INPUT, NOW, 120);
  it('round-trips what newClaims makes', () => {
    expect(parseClaims(JSON.stringify(valid))).toEqual(valid);
  });

  it.each([
    ['not JSON', '{'],
    ['an extra field', JSON.stringify({ ...valid, admin: true })],
    ['a missing field', JSON.stringify({ ...valid, jti: undefined })],
    ['a lifetime above 120 s', JSON.stringify({ ...valid, exp: valid.iat + 121 })],
    ['exp before iat', JSON.stringify({ ...valid, exp: valid.iat - 1 })],
    ['a short jti', JSON.stringify({ ...valid, jti: 'abc' })],
    ['a fractional time', JSON.stringify({ ...valid, iat: valid.iat + 0.5 })],
  ])('refuses %s', (_name, text) => {
    expect(parseClaims(text)).toBeNull();
  });
});

describe('tokenContext', () => {
  it('binds the audience with the tokens data key and the xdomain-token purpose', () => {
    expect(tokenContext('b.example')).toEqual({
      purpose: 'xdomain-token',
      dataClass: 'tokens',
      extra: { aud: 'b.example' },
    });
  });
});
