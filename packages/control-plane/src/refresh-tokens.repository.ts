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
  /** The end of the login it belongs to: no token of its family lives past it. */
  readonly sessionExpiresAt: Date;
}

export interface RefreshTokenLifetimes {
  /** Each token's own lifetime (`REFRESH_TOKEN_TTL`): a login left idle this long ends. */
  readonly ttlSeconds: number;
  /** The login's absolute lifetime (`SESSION_MAX_AGE`), from sign-in: refreshing never extends it. */
  readonly sessionMaxAgeSeconds: number;
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
  /** Starts a new family (a login), which ends `sessionMaxAgeSeconds` from now whatever happens. */
  issue(userId: string, lifetimes: RefreshTokenLifetimes): Promise<IssuedRefreshToken>;
  /** The next token of the family lives `ttlSeconds`, or less: never past the login's end. */
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
  session_expires_at: z.date(),
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

  function checkSeconds(seconds: number, what: string): void {
    if (!Number.isSafeInteger(seconds) || seconds < 1) {
      throw new RangeError(`${what} must be a positive number of seconds`);
    }
  }

  async function insert(
    q: Queryable,
    userId: string,
    familyId: string,
    ttlSeconds: number,
    sessionExpiresAt: Date,
  ): Promise<IssuedRefreshToken> {
    checkSeconds(ttlSeconds, 'refresh token TTL');
    const now = clock();
    const token = newRefreshToken();
    const id = newId('refreshToken', now);
    const expiresAt = new Date(Math.min(now.getTime() + ttlSeconds * 1000, sessionExpiresAt.getTime()));
    await q.query(
      `INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, issued_at, expires_at, session_expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [id, userId, familyId, digestSecret(token), now, expiresAt, sessionExpiresAt],
    );
    return { token, id, familyId, expiresAt, sessionExpiresAt };
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

    issue(userId, { ttlSeconds, sessionMaxAgeSeconds }) {
      checkSeconds(sessionMaxAgeSeconds, 'session max age');
      const sessionExpiresAt = new Date(clock().getTime() + sessionMaxAgeSeconds * 1000);
      return db.transaction((tx) =>
        insert(tx, userId, `fam_${randomBytes(12).toString('hex')}`, ttlSeconds, sessionExpiresAt),
      );
    },

    async rotate(token, ttlSeconds) {
      if (!TOKEN_SHAPE.test(token)) return { kind: 'invalid' };
      return db.transaction(async (tx): Promise<RefreshOutcome> => {
        const { rows } = await tx.query(
          `SELECT id, user_id, family_id, expires_at, session_expires_at, used_at, revoked_at
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
        // `expires_at` never passes `session_expires_at`, so an expired login fails here too.
        if (row.revoked_at !== null || row.expires_at.getTime() <= now.getTime()) return { kind: 'invalid' };
        await tx.query('UPDATE refresh_tokens SET used_at = $2 WHERE id = $1', [row.id, now]);
        const next = await insert(tx, row.user_id, row.family_id, ttlSeconds, row.session_expires_at);
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
