import { randomBytes } from 'node:crypto';
import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { newId } from './ids';
import { digestSecret, newRefreshToken } from './secrets';
import type { Clock, UsersRepository } from './users.repository';
import { parseRow } from './validation';

export interface IssuedRefreshToken {
  /** The token itself: returned to the client once, stored only as a SHA-256 digest. */
  readonly token: string;
  readonly id: string;
  readonly familyId: string;
  readonly expiresAt: Date;
}

export type RefreshOutcome =
  /** The token was current: it is now used up and `next` replaces it (same family). */
  | { readonly kind: 'rotated'; readonly userId: string; readonly next: IssuedRefreshToken }
  /**
   * An already-rotated token came back: someone holds a copy. Every refresh token of the user was revoked and
   * every access token voided, in the same transaction.
   */
  | { readonly kind: 'reused'; readonly userId: string; readonly familyId: string }
  /** Unknown, expired or revoked. */
  | { readonly kind: 'invalid' };

export interface RefreshTokensRepository {
  /** Starts a new family (a login). */
  issue(userId: string, ttlSeconds: number): Promise<IssuedRefreshToken>;
  rotate(token: string, ttlSeconds: number): Promise<RefreshOutcome>;
  /** Logout: revokes the token's whole family if it belongs to `userId`. True when something was revoked. */
  revokeFamily(userId: string, token: string): Promise<boolean>;
  /** Revokes every refresh token of the user and voids their access tokens. */
  revokeAll(q: Queryable, userId: string): Promise<void>;
}

const tokenRowSchema = z.object({
  id: z.string(),
  user_id: z.string(),
  family_id: z.string(),
  expires_at: z.date(),
  used_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
});

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function createRefreshTokensRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
  readonly users: Pick<UsersRepository, 'revokeAccessTokens'>;
}): RefreshTokensRepository {
  const { db, clock, users } = deps;

  async function insert(
    q: Queryable,
    userId: string,
    familyId: string,
    ttlSeconds: number,
  ): Promise<IssuedRefreshToken> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new RangeError('refresh token TTL must be a positive number of seconds');
    }
    const now = clock();
    const token = newRefreshToken();
    const id = newId('refreshToken', now);
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
    await q.query(
      `INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, issued_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [id, userId, familyId, digestSecret(token), now, expiresAt],
    );
    return { token, id, familyId, expiresAt };
  }

  async function revokeAll(q: Queryable, userId: string): Promise<void> {
    await q.query('UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL', [
      userId,
      clock(),
    ]);
    await users.revokeAccessTokens(userId, q);
  }

  return {
    revokeAll,

    issue: (userId, ttlSeconds) =>
      db.transaction((tx) => insert(tx, userId, `fam_${randomBytes(12).toString('hex')}`, ttlSeconds)),

    async rotate(token, ttlSeconds) {
      if (!TOKEN_SHAPE.test(token)) return { kind: 'invalid' };
      return db.transaction(async (tx): Promise<RefreshOutcome> => {
        const { rows } = await tx.query(
          `SELECT id, user_id, family_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
          [digestSecret(token)],
        );
        if (rows[0] === undefined) return { kind: 'invalid' };
        const row = parseRow(tokenRowSchema, rows[0], 'refresh_tokens');
        if (row.used_at !== null) {
          await revokeAll(tx, row.user_id);
          return { kind: 'reused', userId: row.user_id, familyId: row.family_id };
        }
        const now = clock();
        if (row.revoked_at !== null || row.expires_at.getTime() <= now.getTime()) return { kind: 'invalid' };
        await tx.query('UPDATE refresh_tokens SET used_at = $2 WHERE id = $1', [row.id, now]);
        const next = await insert(tx, row.user_id, row.family_id, ttlSeconds);
        return { kind: 'rotated', userId: row.user_id, next };
      });
    },

    async revokeFamily(userId, token) {
      if (!TOKEN_SHAPE.test(token)) return false;
      const { rowCount } = await db.query(
        `UPDATE refresh_tokens SET revoked_at = $3
          WHERE user_id = $1 AND revoked_at IS NULL
            AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $2 AND user_id = $1)`,
        [userId, digestSecret(token), clock()],
      );
      return rowCount > 0;
    },
  };
}
