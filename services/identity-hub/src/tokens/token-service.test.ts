import { randomBytes } from 'node:crypto';
import { createMemoryCache } from '@signal/cache';
import {
  type CryptoAuditEvent,
  type CryptoService,
  createCryptoService,
  createKeyring,
} from '@signal/crypto';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TokenClaims, tokenContext } from './claims';
import { cacheSingleUseStore } from './single-use';
import { createTokenService, type TokenService } from './token-service';

const INPUT = {
  anonymousId: '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f',
  org: 'org_demo',
  pipeline: 'pl_demo',
  from: 'a.example',
  aud: 'b.example',
};

let audited: CryptoAuditEvent[];
let crypto: CryptoService;
let clock: number;
let tokens: TokenService;
let cache: ReturnType<typeof createMemoryCache>;

function newCrypto(): CryptoService {
  return createCryptoService({
    keyring: createKeyring({ current: randomBytes(32) }),
    audit: { record: (event) => audited.push(event) },
  });
}

beforeEach(() => {
  audited = [];
  crypto = newCrypto();
  clock = Date.parse('2026-03-01T12:00:00.000Z');
  cache = createMemoryCache({ namespace: 'test' });
  tokens = createTokenService({
    crypto,
    singleUse: cacheSingleUseStore(cache, { now: () => clock }),
    ttlSeconds: 120,
    clockSkewSeconds: 5,
    now: () => clock,
  });
});
afterEach(async () => {
  await cache.close();
});

function bytesOf(token: string): Buffer {
  return Buffer.from(token.slice(3), 'base64url');
}
function textOf(bytes: Buffer): string {
  return `v1.${bytes.toString('base64url')}`;
}
function flip(token: string, byte: number, bit = 0): string {
  const bytes = bytesOf(token);
  bytes[byte] = (bytes[byte] ?? 0) ^ (1 << bit);
  return textOf(bytes);
}
function decryptFailures() {
  return audited.filter((e) => e.action === 'crypto.decrypt_failed');
}

describe('issue', () => {
  it('is the v1 text form, URL-safe, sealed for the audience with the tokens key', () => {
    const { token, claims } = tokens.issue(INPUT);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(encodeURIComponent(token)).toBe(token);
    expect(token.length).toBeLessThan(600);
    const opened = JSON.parse(
      crypto.openText(token, tokenContext('b.example')).toString('utf8'),
    ) as TokenClaims;
    expect(opened).toEqual(claims);
    expect(Object.keys(opened).sort()).toEqual([
      'anonymous_id',
      'aud',
      'exp',
      'from',
      'iat',
      'jti',
      'org',
      'pipeline',
    ]);
    expect(opened.exp - opened.iat).toBe(120);
  });

  it('uses the configured shorter lifetime and refuses one above 120 s', () => {
    const short = createTokenService({
      crypto,
      singleUse: cacheSingleUseStore(cache),
      ttlSeconds: 30,
      now: () => clock,
    });
    const { claims } = short.issue(INPUT);
    expect(claims.exp - claims.iat).toBe(30);
    expect(() =>
      createTokenService({ crypto, singleUse: cacheSingleUseStore(cache), ttlSeconds: 121 }),
    ).toThrow(RangeError);
  });
});

describe('the token matrix', () => {
  it('a valid token resolves once, for its audience, and carries the visitor', async () => {
    const { token } = tokens.issue(INPUT);
    const first = await tokens.resolve(token, 'b.example');
    expect(first).toMatchObject({ ok: true, claims: { anonymous_id: INPUT.anonymousId, aud: 'b.example' } });
    expect(audited.filter((e) => e.action === 'crypto.decrypt_failed')).toEqual([]);
  });

  it('a second use is refused as a replay, whatever happens in between', async () => {
    const { token } = tokens.issue(INPUT);
    expect((await tokens.resolve(token, 'b.example')).ok).toBe(true);
    expect(await tokens.resolve(token, 'b.example')).toEqual({ ok: false, reason: 'replayed' });
    clock += 60_000;
    expect(await tokens.resolve(token, 'b.example')).toEqual({ ok: false, reason: 'replayed' });
  });

  it('a token redeemed on a replica whose clock runs ahead by the allowed skew stays spent on the others', async () => {
    let real = clock;
    const shared = createMemoryCache({ namespace: 'skew', now: () => real });
    const replica = (aheadMs: number) =>
      createTokenService({
        crypto,
        singleUse: cacheSingleUseStore(shared, { now: () => real + aheadMs }),
        ttlSeconds: 120,
        clockSkewSeconds: 5,
        now: () => real + aheadMs,
      });
    const fast = replica(5_000);
    const exact = replica(0);
    const { token } = exact.issue(INPUT);
    real += 119_500; // near the end of the token's life
    expect((await fast.resolve(token, 'b.example')).ok).toBe(true);
    // The exact replica accepts the token until exp + 5 s on its own clock: it must see the id as used.
    for (const after of [1_000, 3_000, 4_900]) {
      real = clock + 120_000 + after;
      expect(await exact.resolve(token, 'b.example')).toEqual({ ok: false, reason: 'replayed' });
    }
    await shared.close();
  });

  it('open alone does not consume: a request refused for another reason leaves the token usable', async () => {
    const { token } = tokens.issue(INPUT);
    expect(tokens.open(token, 'b.example').ok).toBe(true);
    expect(tokens.open(token, 'b.example').ok).toBe(true);
    expect((await tokens.resolve(token, 'b.example')).ok).toBe(true);
  });

  it('an expired token is refused, with 5 s of clock-skew allowance', async () => {
    const late = tokens.issue(INPUT);
    clock += 124_999;
    expect((await tokens.resolve(late.token, 'b.example')).ok).toBe(true);
    const expired = tokens.issue(INPUT);
    clock += 125_000;
    expect(await tokens.resolve(expired.token, 'b.example')).toEqual({ ok: false, reason: 'expired' });
  });

  it('a token from a clock far ahead is refused as not yet valid', async () => {
    const { token } = tokens.issue(INPUT);
    clock -= 6_000;
    expect(await tokens.resolve(token, 'b.example')).toEqual({ ok: false, reason: 'not_yet_valid' });
  });

  it('a token for another audience does not even decrypt (the audience is in the key commitment)', async () => {
    const { token } = tokens.issue(INPUT);
    for (const elsewhere of [
      'c.example',
      'evil.example',
      'b.example.evil.example',
      'www.b.example',
      'a.example',
    ]) {
      expect(await tokens.resolve(token, elsewhere)).toEqual({
        ok: false,
        reason: 'commitment_mismatch',
        cryptoCode: 'commitment_mismatch',
      });
    }
    expect(decryptFailures()).toHaveLength(5);
    // Refused elsewhere, the token still works where it was meant to be used.
    expect((await tokens.resolve(token, 'b.example')).ok).toBe(true);
  });

  it('a token sealed under another deployment’s key is refused as an unknown key', async () => {
    const other = createTokenService({
      crypto: newCrypto(),
      singleUse: cacheSingleUseStore(cache),
      ttlSeconds: 120,
      now: () => clock,
    });
    const { token } = other.issue(INPUT);
    expect(await tokens.resolve(token, 'b.example')).toEqual({
      ok: false,
      reason: 'unknown_key',
      cryptoCode: 'unknown_key_id',
    });
  });

  it.each([
    ['the version byte', 0, 'malformed', 'malformed'],
    ['the key id', 5, 'unknown_key', 'unknown_key_id'],
    ['the salt', 20, 'commitment_mismatch', 'commitment_mismatch'],
    ['the commitment', 60, 'commitment_mismatch', 'commitment_mismatch'],
    ['the ciphertext', 80, 'authentication_failed', 'authentication_failed'],
    ['the tag', -1, 'authentication_failed', 'authentication_failed'],
  ])('one flipped bit in %s is refused and audited as a decrypt failure', async (_part, at, reason, code) => {
    const { token } = tokens.issue(INPUT);
    const position = at < 0 ? bytesOf(token).length + at : at;
    expect(await tokens.resolve(flip(token, position, 3), 'b.example')).toEqual({
      ok: false,
      reason,
      cryptoCode: code,
    });
    expect(decryptFailures()).toEqual([
      expect.objectContaining({ code, purpose: 'xdomain-token', dataClass: 'tokens' }),
    ]);
    // The genuine token is untouched by the attempt.
    expect((await tokens.resolve(token, 'b.example')).ok).toBe(true);
  });

  it('every single-bit flip anywhere in the token is refused', () => {
    const { token } = tokens.issue(INPUT);
    const length = bytesOf(token).length;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: length * 8 - 1 }), (bit) => {
        const verdict = tokens.open(flip(token, Math.floor(bit / 8), bit % 8), 'b.example');
        expect(verdict.ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('a truncated token is refused at every length', () => {
    const { token } = tokens.issue(INPUT);
    const bytes = bytesOf(token);
    for (let cut = 1; cut < bytes.length; cut += 7) {
      expect(tokens.open(textOf(bytes.subarray(0, bytes.length - cut)), 'b.example').ok).toBe(false);
    }
    for (let cut = 1; cut < token.length; cut += 13) {
      expect(tokens.open(token.slice(0, token.length - cut), 'b.example').ok).toBe(false);
    }
    expect(tokens.open(textOf(Buffer.concat([bytes, Buffer.from([0])])), 'b.example').ok).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['the prefix alone', 'v1.'],
    ['another version', `v2.${'A'.repeat(300)}`],
    ['padding', `${'v1.'}${'A'.repeat(300)}==`],
    ['standard base64', `v1.${'A+/'.repeat(100)}`],
    ['spaces', `v1.${'A'.repeat(150)} ${'A'.repeat(150)}`],
    ['a JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'],
    // Random bytes, but never the v1 version byte first (1 in 256 would read as a token under an unknown key).
    ['random base64url', `v1.${Buffer.concat([Buffer.of(0x02), randomBytes(299)]).toString('base64url')}`],
    ['oversized', `v1.${'A'.repeat(5000)}`],
  ])('garbage (%s) is refused as malformed', async (_name, garbage) => {
    const verdict = await tokens.resolve(garbage, 'b.example');
    expect(verdict).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('arbitrary strings are refused, never thrown on', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (garbage) => {
        expect(tokens.open(garbage, 'b.example').ok).toBe(false);
        expect(tokens.open(`v1.${garbage}`, 'b.example').ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('claims that break the rules are refused even when sealed with the right key', async () => {
    const claims = tokens.issue(INPUT).claims;
    const forge = (value: unknown) => crypto.sealText(JSON.stringify(value), tokenContext('b.example'));
    expect(tokens.open(forge({ ...claims, exp: claims.iat + 3600 }), 'b.example')).toEqual({
      ok: false,
      reason: 'invalid_claims',
    });
    expect(tokens.open(forge({ ...claims, aud: 'c.example' }), 'b.example')).toEqual({
      ok: false,
      reason: 'audience_mismatch',
    });
    expect(tokens.open(forge({ ...claims, extra: 1 }), 'b.example')).toMatchObject({
      reason: 'invalid_claims',
    });
    expect(tokens.open(crypto.sealText('not json', tokenContext('b.example')), 'b.example')).toMatchObject({
      reason: 'invalid_claims',
    });
    // A value sealed for another purpose with the same audience does not open as a token.
    const other = crypto.sealText(JSON.stringify(claims), {
      purpose: 'something-else',
      extra: { aud: 'b.example' },
    });
    expect(tokens.open(other, 'b.example')).toMatchObject({ reason: 'commitment_mismatch' });
  });

  it('an audience that is not a host name is refused before any decryption', () => {
    const { token } = tokens.issue(INPUT);
    expect(tokens.open(token, '')).toEqual({ ok: false, reason: 'audience_not_served' });
    expect(tokens.open(token, 'B.EXAMPLE')).toEqual({ ok: false, reason: 'audience_not_served' });
    expect(decryptFailures()).toEqual([]);
  });
});
