import { randomBytes } from 'node:crypto';
import { ID_PATTERN, type Role, roleSchema } from '@signal/control-plane';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';

export const TOKEN_ISSUER = 'signal-management-api';
export const TOKEN_AUDIENCE = 'signal-admin';
/** Pinned: verification accepts nothing else (no `none`, no RS256-with-HMAC-key confusion). */
export const TOKEN_ALGORITHM = 'HS256';

export interface AccessTokenSubject {
  readonly id: string;
  readonly orgId: string;
  readonly role: Role;
  /** The user's revocation cut-off: the new token is issued strictly after it. */
  readonly tokensValidAfter: Date | null;
}

export interface IssuedAccessToken {
  readonly token: string;
  readonly expiresIn: number;
}

export interface VerifiedAccessToken {
  readonly userId: string;
  readonly orgId: string;
  readonly role: Role;
  /** Issue time in ms (the claim is a NumericDate with millisecond precision). */
  readonly issuedAtMs: number;
  readonly tokenId: string;
}

export type TokenRejection = 'expired' | 'invalid';

export interface AccessTokens {
  issue(subject: AccessTokenSubject): Promise<IssuedAccessToken>;
  verify(token: string): Promise<VerifiedAccessToken | TokenRejection>;
}

const claimsSchema = z.object({
  sub: z.string().regex(ID_PATTERN),
  org_id: z.string().regex(ID_PATTERN),
  role: roleSchema,
  iat: z.number().positive(),
  exp: z.number().positive(),
  jti: z.string().regex(/^[0-9a-f]{32}$/),
});

/**
 * HS256 access tokens (jose): claims `sub, org_id, role, iat, exp, jti`, with `iss`/`aud` fixed and checked.
 * `iat` carries milliseconds (RFC 7519 NumericDates may be fractional) so the per-user "tokens valid after"
 * cut-off is exact: a token issued in the same second as a revocation but before it is still refused.
 */
export function createAccessTokens(options: {
  readonly secret: Uint8Array;
  readonly ttlSeconds: number;
  readonly clock: () => Date;
}): AccessTokens {
  const { secret, ttlSeconds, clock } = options;
  return {
    async issue(subject) {
      const cutoff = subject.tokensValidAfter?.getTime() ?? Number.NEGATIVE_INFINITY;
      const issuedAtMs = Math.max(clock().getTime(), cutoff + 1);
      const token = await new SignJWT({ org_id: subject.orgId, role: subject.role })
        .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: 'JWT' })
        .setSubject(subject.id)
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setIssuedAt(issuedAtMs / 1000)
        .setExpirationTime(Math.floor(issuedAtMs / 1000) + ttlSeconds)
        .setJti(randomBytes(16).toString('hex'))
        .sign(secret);
      return { token, expiresIn: ttlSeconds };
    },

    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, secret, {
          algorithms: [TOKEN_ALGORITHM],
          issuer: TOKEN_ISSUER,
          audience: TOKEN_AUDIENCE,
          requiredClaims: ['sub', 'iat', 'exp', 'jti'],
          currentDate: clock(),
        });
        const claims = claimsSchema.safeParse(payload);
        if (!claims.success) return 'invalid';
        return {
          userId: claims.data.sub,
          orgId: claims.data.org_id,
          role: claims.data.role,
          issuedAtMs: Math.round(claims.data.iat * 1000),
          tokenId: claims.data.jti,
        };
      } catch (error) {
        return error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid';
      }
    },
  };
}
