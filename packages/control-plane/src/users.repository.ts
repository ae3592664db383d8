import { isStoreError, type Queryable } from '@signal/store';
import { z } from 'zod';
import { ControlPlaneError } from './errors';
import { newId } from './ids';
import { type Page, type PageRequest, resolvePage, toPage } from './pagination';
import type { PasswordHasher } from './password-hasher';
import { newOneTimePassword } from './secrets';
import {
  emailSchema,
  nameSchema,
  parseInput,
  parseRow,
  passwordSchema,
  type Role,
  roleSchema,
} from './validation';

export type Clock = () => Date;

/**
 * How long an invited user's one-time password can be used to log in (ASVS 2.3.1: initial passwords expire
 * after a short time). A later invitee asks an admin to remove and re-invite them.
 */
export const ONE_TIME_PASSWORD_TTL_MS = 72 * 3600_000;

/** A user as every reader may see it (no password hash). */
export interface User {
  readonly id: string;
  readonly orgId: string;
  readonly email: string;
  readonly name: string | null;
  readonly role: Role;
  /** Invited users log in with a one-time password and must choose their own before anything else. */
  readonly mustChangePassword: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What authentication needs: the hash to verify and the instant before which tokens are void. */
export interface UserAuthRecord extends User {
  readonly passwordHash: string;
  /** Access tokens issued at or before this instant are refused; null when nothing was ever revoked. */
  readonly tokensValidAfter: Date | null;
  /** When a one-time password stops working for login; null for a password the user chose. */
  readonly passwordExpiresAt: Date | null;
  /** `passwordExpiresAt` had passed when the record was read (by the repository's clock). */
  readonly passwordExpired: boolean;
}

const userRowSchema = z
  .object({
    id: z.string(),
    org_id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    role: roleSchema,
    password_hash: z.string(),
    must_change_password: z.boolean(),
    tokens_valid_after: z.date().nullable(),
    password_expires_at: z.date().nullable(),
    created_at: z.date(),
    updated_at: z.date(),
  })
  .transform(
    (row): Omit<UserAuthRecord, 'passwordExpired'> => ({
      id: row.id,
      orgId: row.org_id,
      email: row.email,
      name: row.name,
      role: row.role,
      mustChangePassword: row.must_change_password,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      passwordHash: row.password_hash,
      tokensValidAfter: row.tokens_valid_after,
      passwordExpiresAt: row.password_expires_at,
    }),
  );

const USER_COLUMNS =
  'id, org_id, email, name, role, password_hash, must_change_password, tokens_valid_after, password_expires_at, created_at, updated_at';

function publicUser(record: Omit<UserAuthRecord, 'passwordExpired'>): User {
  return {
    id: record.id,
    orgId: record.orgId,
    email: record.email,
    name: record.name,
    role: record.role,
    mustChangePassword: record.mustChangePassword,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

type UserRow = z.output<typeof userRowSchema>;

function toUsers(rows: unknown[]): UserRow[] {
  return rows.map((row) => parseRow(userRowSchema, row, 'users'));
}

/** Rows with what authentication needs, the one-time password's expiry judged at `now`. */
function toAuthRecords(rows: unknown[], now: Date): UserAuthRecord[] {
  return toUsers(rows).map((record) => {
    const expires = record.passwordExpiresAt;
    return { ...record, passwordExpired: expires !== null && expires.getTime() <= now.getTime() };
  });
}

export const newUserSchema = z.strictObject({
  email: emailSchema,
  name: nameSchema.nullable().optional(),
  role: roleSchema,
  password: passwordSchema,
});
export type NewUserInput = z.input<typeof newUserSchema>;

export const inviteUserSchema = z.strictObject({
  email: emailSchema,
  name: nameSchema.nullable().optional(),
  /** Ownership is never granted by invitation: there is exactly one owner, changed by transfer. */
  role: z.enum(['admin', 'editor', 'viewer']),
});
export type InviteUserInput = z.input<typeof inviteUserSchema>;

export interface Change<T> {
  readonly before: T;
  readonly after: T;
}

export interface UsersRepository {
  /** Inserts a user in an org (inside the caller's transaction). The owner role only for an org without one. */
  insert(q: Queryable, orgId: string, input: NewUserInput): Promise<User>;
  /** Creates an invited user with a one-time password returned once (they must change it at first login). */
  invite(orgId: string, input: InviteUserInput): Promise<{ user: User; oneTimePassword: string }>;
  get(orgId: string, userId: string): Promise<User | null>;
  /** The org's owner (inside the caller's transaction). */
  owner(q: Pick<Queryable, 'query'>, orgId: string): Promise<User | null>;
  /** By id across orgs, with what token checks need. */
  authRecord(userId: string): Promise<UserAuthRecord | null>;
  /** Users whose email is `email` (one per org), optionally only in the org with slug `orgSlug`. */
  findForLogin(email: string, orgSlug?: string): Promise<UserAuthRecord[]>;
  list(orgId: string, page?: PageRequest): Promise<Page<User>>;
  /** Changes a non-owner's role to a non-owner role; the user's access tokens are revoked (new role at once). */
  changeRole(orgId: string, userId: string, role: Role): Promise<Change<User>>;
  /** Removes a non-owner; their refresh tokens go with them (cascade). */
  remove(orgId: string, userId: string): Promise<User>;
  /** Owner → admin, target → owner, atomically; both users' access tokens are revoked. */
  transferOwnership(orgId: string, ownerId: string, targetId: string): Promise<Change<User>[]>;
  /** Sets a new password (clears the one-time flag) and revokes every token the user holds. */
  setPassword(userId: string, password: string): Promise<void>;
  /** Replaces the hash with one at the current cost (after a successful login with an older cost). */
  rehash(userId: string, oldHash: string, newHash: string): Promise<void>;
  /**
   * Voids every access token the user holds, now (refresh tokens: see RefreshTokensRepository). Runs inside
   * `q` when given (the caller's transaction).
   */
  revokeAccessTokens(userId: string, q?: Pick<Queryable, 'query'>): Promise<void>;
}

export function createUsersRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
}): UsersRepository {
  const { db, clock, hasher } = deps;

  async function lockUser(q: Queryable, orgId: string, userId: string): Promise<UserRow> {
    const { rows } = await q.query(
      `SELECT ${USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2 FOR UPDATE`,
      [orgId, userId],
    );
    const user = toUsers(rows)[0];
    if (user === undefined) throw new ControlPlaneError('not_found', 'user not found');
    return user;
  }

  async function revokeAccessTokens(userId: string, q: Pick<Queryable, 'query'> = db): Promise<void> {
    // Strictly after any earlier cut-off, so tokens issued right at a previous revocation die too.
    await q.query(
      `UPDATE users SET tokens_valid_after =
         greatest($2::timestamptz, coalesce(tokens_valid_after + interval '1 millisecond', $2::timestamptz))
       WHERE id = $1`,
      [userId, clock()],
    );
  }

  async function insert(q: Queryable, orgId: string, raw: NewUserInput): Promise<User> {
    const input = parseInput(newUserSchema, raw, 'user');
    if (input.role === 'owner') {
      const owners = await q.query('SELECT 1 FROM users WHERE org_id = $1 AND role = $2', [orgId, 'owner']);
      if (owners.rowCount > 0) {
        throw new ControlPlaneError(
          'owner_required',
          'an org has exactly one owner: transfer ownership instead of adding another owner',
        );
      }
    }
    const now = clock();
    const passwordHash = await hasher.hash(input.password);
    try {
      const { rows } = await q.query(
        `INSERT INTO users (id, org_id, email, name, role, password_hash, must_change_password, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, false, $7, $7) RETURNING ${USER_COLUMNS}`,
        [newId('user', now), orgId, input.email, input.name ?? null, input.role, passwordHash, now],
      );
      const user = toUsers(rows)[0];
      if (user === undefined) throw new ControlPlaneError('corrupt_row', 'insert returned no row');
      return publicUser(user);
    } catch (error) {
      throw mapUserConflict(error);
    }
  }

  return {
    insert,
    revokeAccessTokens,

    async invite(orgId, raw) {
      const input = parseInput(inviteUserSchema, raw, 'invitation');
      const oneTimePassword = newOneTimePassword();
      const passwordHash = await hasher.hash(oneTimePassword);
      const now = clock();
      try {
        const { rows } = await db.query(
          `INSERT INTO users (id, org_id, email, name, role, password_hash, must_change_password,
                              password_expires_at, created_at, updated_at)
           SELECT $1, o.id, $3, $4, $5, $6, true, $8, $7, $7 FROM orgs o WHERE o.id = $2
           RETURNING ${USER_COLUMNS}`,
          [
            newId('user', now),
            orgId,
            input.email,
            input.name ?? null,
            input.role,
            passwordHash,
            now,
            new Date(now.getTime() + ONE_TIME_PASSWORD_TTL_MS),
          ],
        );
        const user = toUsers(rows)[0];
        if (user === undefined) throw new ControlPlaneError('not_found', 'org not found');
        return { user: publicUser(user), oneTimePassword };
      } catch (error) {
        throw mapUserConflict(error);
      }
    },

    async get(orgId, userId) {
      const { rows } = await db.query(`SELECT ${USER_COLUMNS} FROM users WHERE org_id = $1 AND id = $2`, [
        orgId,
        userId,
      ]);
      const user = toUsers(rows)[0];
      return user === undefined ? null : publicUser(user);
    },

    async owner(q, orgId) {
      const { rows } = await q.query(
        `SELECT ${USER_COLUMNS} FROM users WHERE org_id = $1 AND role = 'owner'`,
        [orgId],
      );
      const user = toUsers(rows)[0];
      return user === undefined ? null : publicUser(user);
    },

    async authRecord(userId) {
      const { rows } = await db.query(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [userId]);
      return toAuthRecords(rows, clock())[0] ?? null;
    },

    async findForLogin(rawEmail, orgSlug) {
      const parsed = emailSchema.safeParse(rawEmail);
      if (!parsed.success) return [];
      const { rows } =
        orgSlug === undefined
          ? await db.query(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1 ORDER BY id LIMIT 10`, [
              parsed.data,
            ])
          : await db.query(
              `SELECT ${USER_COLUMNS} FROM users
                WHERE email = $1 AND org_id = (SELECT id FROM orgs WHERE slug = $2)`,
              [parsed.data, orgSlug],
            );
      return toAuthRecords(rows, clock());
    },

    async list(orgId, page) {
      const { limit, after } = resolvePage(page);
      const { rows } = await db.query(
        `SELECT ${USER_COLUMNS} FROM users WHERE org_id = $1 AND ($2::text IS NULL OR id > $2)
         ORDER BY id LIMIT $3`,
        [orgId, after, limit + 1],
      );
      return toPage(toUsers(rows).map(publicUser), limit);
    },

    async changeRole(orgId, userId, rawRole) {
      const role = parseInput(roleSchema, rawRole, 'role');
      return db.transaction(async (tx) => {
        const before = await lockUser(tx, orgId, userId);
        if (before.role === 'owner' || role === 'owner') {
          throw new ControlPlaneError(
            'owner_required',
            'an org has exactly one owner: use transfer-ownership to change who it is',
          );
        }
        if (before.role === role) return { before: publicUser(before), after: publicUser(before) };
        const { rows } = await tx.query(
          `UPDATE users SET role = $3, updated_at = $4 WHERE org_id = $1 AND id = $2 RETURNING ${USER_COLUMNS}`,
          [orgId, userId, role, clock()],
        );
        await revokeAccessTokens(userId, tx);
        const after = toUsers(rows)[0];
        if (after === undefined) throw new ControlPlaneError('not_found', 'user not found');
        return { before: publicUser(before), after: publicUser(after) };
      });
    },

    async remove(orgId, userId) {
      return db.transaction(async (tx) => {
        const user = await lockUser(tx, orgId, userId);
        if (user.role === 'owner') {
          throw new ControlPlaneError(
            'owner_required',
            'the owner cannot be removed: transfer ownership to another user first',
          );
        }
        await tx.query('DELETE FROM users WHERE org_id = $1 AND id = $2', [orgId, userId]);
        return publicUser(user);
      });
    },

    async transferOwnership(orgId, ownerId, targetId) {
      if (ownerId === targetId) {
        throw new ControlPlaneError('invalid_input', 'ownership can only be transferred to another user');
      }
      return db.transaction(async (tx) => {
        // Lock in id order so two concurrent transfers cannot deadlock.
        const [first, second] = ownerId < targetId ? [ownerId, targetId] : [targetId, ownerId];
        const a = await lockUser(tx, orgId, first);
        const b = await lockUser(tx, orgId, second);
        const owner = a.id === ownerId ? a : b;
        const target = a.id === targetId ? a : b;
        if (owner.role !== 'owner') {
          throw new ControlPlaneError('owner_required', 'only the owner can transfer ownership');
        }
        const now = clock();
        // Demote first: the partial unique index allows one owner at any moment.
        const demoted = await tx.query(
          `UPDATE users SET role = 'admin', updated_at = $2 WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [owner.id, now],
        );
        const promoted = await tx.query(
          `UPDATE users SET role = 'owner', updated_at = $2 WHERE id = $1 RETURNING ${USER_COLUMNS}`,
          [target.id, now],
        );
        await revokeAccessTokens(owner.id, tx);
        await revokeAccessTokens(target.id, tx);
        const ownerAfter = toUsers(demoted.rows)[0];
        const targetAfter = toUsers(promoted.rows)[0];
        if (ownerAfter === undefined || targetAfter === undefined) {
          throw new ControlPlaneError('not_found', 'user not found');
        }
        return [
          { before: publicUser(owner), after: publicUser(ownerAfter) },
          { before: publicUser(target), after: publicUser(targetAfter) },
        ];
      });
    },

    async setPassword(userId, raw) {
      const password = parseInput(passwordSchema, raw, 'password');
      const passwordHash = await hasher.hash(password);
      await db.transaction(async (tx) => {
        const { rowCount } = await tx.query(
          `UPDATE users SET password_hash = $2, must_change_password = false, password_expires_at = NULL,
                  updated_at = $3 WHERE id = $1`,
          [userId, passwordHash, clock()],
        );
        if (rowCount === 0) throw new ControlPlaneError('not_found', 'user not found');
        await revokeAccessTokens(userId, tx);
        await tx.query(
          'UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL',
          [userId, clock()],
        );
      });
    },

    async rehash(userId, oldHash, newHash) {
      // Only if nobody changed the password meanwhile.
      await db.query('UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2', [
        userId,
        oldHash,
        newHash,
      ]);
    },
  };
}

function mapUserConflict(error: unknown): unknown {
  if (isStoreError(error) && error.code === 'conflict') {
    if (error.constraint === 'users_one_owner_per_org') {
      return new ControlPlaneError('owner_required', 'an org has exactly one owner');
    }
    return new ControlPlaneError('conflict', 'a user with this email already exists in the org');
  }
  return error;
}
