import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAccessTokens, TOKEN_AUDIENCE, TOKEN_ISSUER } from './tokens';

const secret = Buffer.from('a-test-secret-of-at-least-32-bytes!!');
const user = {
  id: `usr_${'0'.repeat(12)}${'a'.repeat(16)}`,
  orgId: `org_${'0'.repeat(12)}${'b'.repeat(16)}`,
  role: 'editor' as const,
};

describe('access tokens', () => {
  it('carries sub, org_id, role, iss, aud, exp and a jti, signed with HS256', async () => {
    const now = new Date('2026-04-06T14:30:00.123Z');
    const tokens = createAccessTokens({ secret, ttlSeconds: 900, clock: () => now });
    const { token, expiresIn } = await tokens.issue({ ...user, tokensValidAfter: null });
    expect(expiresIn).toBe(900);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: user.id,
      org_id: user.orgId,
      role: 'editor',
      iss: TOKEN_ISSUER,
      aud: TOKEN_AUDIENCE,
      iat: now.getTime() / 1000,
      exp: Math.floor(now.getTime() / 1000) + 900,
    });
    expect(await tokens.verify(token)).toMatchObject({
      userId: user.id,
      role: 'editor',
      issuedAtMs: now.getTime(),
    });
  });

  it('issues strictly after a revocation cut-off, even one in the future of the local clock', async () => {
    const now = new Date('2026-04-06T14:30:00.000Z');
    const tokens = createAccessTokens({ secret, ttlSeconds: 900, clock: () => now });
    const cutoff = new Date(now.getTime() + 5);
    const { token } = await tokens.issue({ ...user, tokensValidAfter: cutoff });
    const verified = await tokens.verify(token);
    expect(verified).not.toBe('invalid');
    if (typeof verified !== 'string') expect(verified.issuedAtMs).toBe(cutoff.getTime() + 1);
  });

  it('reports expiry separately from invalidity', async () => {
    let now = new Date('2026-04-06T14:30:00.000Z');
    const tokens = createAccessTokens({ secret, ttlSeconds: 60, clock: () => now });
    const { token } = await tokens.issue({ ...user, tokensValidAfter: null });
    now = new Date(now.getTime() + 61_000);
    expect(await tokens.verify(token)).toBe('expired');
    expect(await tokens.verify(`${token}x`)).toBe('invalid');
    const other = createAccessTokens({
      secret: Buffer.from('b'.repeat(32)),
      ttlSeconds: 60,
      clock: () => now,
    });
    expect(await other.verify((await tokens.issue({ ...user, tokensValidAfter: null })).token)).toBe(
      'invalid',
    );
  });
});
