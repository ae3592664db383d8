import { randomBytes } from 'node:crypto';
import type {
  ControlPlane,
  PasswordHasher,
  RefreshTokenLifetimes,
  UserAuthRecord,
} from '@signal/control-plane';
import { passwordSchema } from '@signal/control-plane';
import { HttpError, sendJson } from '@signal/http';
import { z } from 'zod';
import type { AuditSubject, AuditTrail } from '../http/audit-trail';
import { readBody, readOptionalBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { userJson } from '../http/serialize';
import type { ApiLogger } from '../logger';
import type { LoginAttempt, LoginThrottle } from './login-throttle';
import type { AccessTokens } from './tokens';

const loginSchema = z.strictObject({
  email: z.string().min(1).max(320),
  password: z.string().min(1).max(1024),
  /**
   * Org slug, needed only when the email belongs to users in several orgs (without it such a login answers
   * 409 once the password of the oldest of them is right).
   */
  org: z.string().min(1).max(64).optional(),
});
const refreshSchema = z.strictObject({ refresh_token: z.string().min(1).max(200) });
const logoutSchema = z.strictObject({ refresh_token: z.string().min(1).max(200).optional() });
const passwordChangeSchema = z.strictObject({
  current_password: z.string().min(1).max(1024),
  new_password: passwordSchema,
});

export interface AuthDeps {
  readonly controlPlane: Pick<ControlPlane, 'users' | 'refreshTokens' | 'hasher'>;
  readonly hasher: PasswordHasher;
  readonly tokens: AccessTokens;
  readonly throttle: LoginThrottle;
  readonly trail: AuditTrail;
  readonly logger: ApiLogger;
  /** REFRESH_TOKEN_TTL and SESSION_MAX_AGE. */
  readonly refreshLifetimes: RefreshTokenLifetimes;
}

export interface AuthRoutes {
  readonly handlers: Pick<
    RouteHandlers,
    'auth.login' | 'auth.refresh' | 'auth.logout' | 'auth.password' | 'auth.me'
  >;
  /** Computes the stand-in hash unknown emails are verified against (call at start-up). */
  prepare(): Promise<void>;
}

function invalidCredentials(): HttpError {
  return new HttpError('unauthorized', 'invalid email or password');
}

function subjectOf(user: UserAuthRecord): AuditSubject {
  return { id: user.id, email: user.email, orgId: user.orgId };
}

const reason = (why: string) => ({ reason: { old: null, new: why } });

function locked(ms: number): HttpError {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  return new HttpError('rate_limited', `too many failed logins: retry in ${seconds} s`, {
    headers: { 'retry-after': String(seconds) },
  });
}

export function createAuthRoutes(deps: AuthDeps): AuthRoutes {
  const { controlPlane, hasher, tokens, throttle, trail, logger } = deps;
  const { users, refreshTokens } = controlPlane;
  let dummyHash: Promise<string> | undefined;
  // Unknown emails are verified against this, so they cost exactly what a wrong password costs.
  const standIn = () => {
    dummyHash ??= hasher.hash(randomBytes(24).toString('base64url'));
    return dummyHash;
  };

  async function tokenPair(user: UserAuthRecord, refreshToken: string) {
    const access = await tokens.issue({
      id: user.id,
      orgId: user.orgId,
      role: user.role,
      tokensValidAfter: user.tokensValidAfter,
    });
    return {
      access_token: access.token,
      refresh_token: refreshToken,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      password_change_required: user.mustChangePassword,
    };
  }

  /** Counts the attempt before any password is checked; a throttle that cannot count refuses (fail closed). */
  async function beginAttempt(email: string, ip: string): Promise<LoginAttempt> {
    try {
      return await throttle.begin(email, ip);
    } catch (error) {
      logger.error({ err: error }, 'login throttle unavailable; login refused');
      throw new HttpError('unavailable', 'login is temporarily unavailable, retry later');
    }
  }

  async function failed(attempt: LoginAttempt): Promise<number> {
    return attempt.failed().catch((error: unknown) => {
      logger.error({ err: error }, 'login throttle unavailable');
      return 0;
    });
  }

  return {
    async prepare() {
      await standIn();
    },

    handlers: {
      async 'auth.login'({ req, res, info }) {
        const body = await readBody(req, loginSchema);
        const attempt = await beginAttempt(body.email, info.ip ?? 'unknown');
        // One user per org at most, oldest first. With `org`, that org's; without, every org's.
        const candidates = await users.findForLogin(body.email, body.org);
        // Without `org`, an email in several orgs is checked against its oldest account only: one password
        // check per attempt whatever the email (the same work as an unknown email, so timing says nothing
        // about how many orgs it is in), and only someone who knows that password learns that the email is
        // in several orgs (409 below), exactly as only they would have been let in.
        const user = candidates[0];
        const orgRequired = body.org === undefined && candidates.length > 1;
        // Only an email that names a real user is recorded (never what else was typed, never a password), so
        // the user's org sees attempts on its accounts in its audit log.
        const subject = user === undefined ? null : subjectOf(user);
        const resourceId = user?.id ?? null;
        if (attempt.lockedForMs > 0) {
          await trail.record({
            action: 'auth.login_failed',
            principal: null,
            info,
            subject,
            resourceId,
            changes: reason('locked_out'),
          });
          throw locked(attempt.lockedForMs);
        }
        const valid = await hasher.verify(body.password, user?.passwordHash ?? (await standIn()));
        if (user === undefined || !valid) {
          const nowLocked = await failed(attempt);
          await trail.record({
            action: 'auth.login_failed',
            principal: null,
            info,
            subject,
            resourceId,
            changes: reason('invalid_credentials'),
          });
          throw nowLocked > 0 ? locked(nowLocked) : invalidCredentials();
        }
        if (orgRequired) {
          // The password is right: nothing for the lockout to count against (a login to that org would
          // clear the counts as well). Not audited: no org was signed in to, and an entry in one org's log
          // would tell its admins that the user belongs to other orgs. The answer names no org.
          await attempt.succeeded().catch((error: unknown) => {
            logger.warn({ err: error }, 'login throttle reset failed');
          });
          throw new HttpError(
            'conflict',
            'this email belongs to users in several orgs: sign in again with "org" set to the slug of the org to sign in to',
          );
        }
        if (user.passwordExpired) {
          // Said only to whoever knows the password: it reveals nothing to a guesser.
          await failed(attempt);
          await trail.record({
            action: 'auth.login_failed',
            principal: null,
            info,
            subject,
            resourceId,
            changes: reason('one_time_password_expired'),
          });
          throw new HttpError(
            'unauthorized',
            'the one-time password has expired: ask an admin to invite you again',
          );
        }
        await attempt.succeeded().catch((error: unknown) => {
          logger.warn({ err: error }, 'login throttle reset failed');
        });
        if (hasher.needsRehash(user.passwordHash)) {
          await users.rehash(user.id, user.passwordHash, await hasher.hash(body.password));
        }
        const refresh = await refreshTokens.issue(user.id, deps.refreshLifetimes);
        const pair = await tokenPair(user, refresh.token);
        await trail.record({
          action: 'auth.login',
          principal: null,
          info,
          subject: subjectOf(user),
          resourceId: user.id,
        });
        sendJson(res, 200, pair);
      },

      async 'auth.refresh'({ req, res, info }) {
        const body = await readBody(req, refreshSchema);
        const outcome = await refreshTokens.rotate(body.refresh_token, deps.refreshLifetimes.ttlSeconds);
        if (outcome.kind === 'invalid') throw new HttpError('unauthorized', 'the refresh token is invalid');
        const user = await users.authRecord(outcome.userId);
        if (outcome.kind === 'reused') {
          await trail.record({
            action: 'auth.refresh_reuse_detected',
            principal: null,
            info,
            subject: user === null ? null : subjectOf(user),
            resourceId: outcome.userId,
            changes: { sessions: { old: 'active', new: 'revoked' } },
          });
          logger.warn({ user_id: outcome.userId }, 'refresh token reuse detected; all tokens revoked');
          throw new HttpError(
            'unauthorized',
            'the refresh token was already used: every session was revoked',
          );
        }
        if (user === null) throw new HttpError('unauthorized', 'the refresh token is invalid');
        sendJson(res, 200, await tokenPair(user, outcome.next.token));
      },

      async 'auth.logout'({ req, res, info, principal }) {
        const body = await readOptionalBody(req, logoutSchema);
        if (body.refresh_token !== undefined) {
          await refreshTokens.revokeFamily(principal.userId, body.refresh_token);
        }
        // Voids this user's access tokens now; other sessions renew with their refresh tokens.
        await users.revokeAccessTokens(principal.userId);
        await trail.record({ action: 'auth.logout', principal, info, resourceId: principal.userId });
        sendJson(res, 204, null);
      },

      async 'auth.password'({ req, res, info, principal }) {
        const body = await readBody(req, passwordChangeSchema);
        const record = await users.authRecord(principal.userId);
        if (record === null) throw new HttpError('unauthorized', 'the access token is invalid');
        // The current password is guessable with a stolen access token: throttled and audited like a login.
        const attempt = await beginAttempt(record.email, info.ip ?? 'unknown');
        if (attempt.lockedForMs > 0) throw locked(attempt.lockedForMs);
        if (!(await hasher.verify(body.current_password, record.passwordHash))) {
          const nowLocked = await failed(attempt);
          await trail.record({
            action: 'auth.login_failed',
            principal,
            info,
            resourceId: principal.userId,
            changes: reason('wrong_current_password'),
          });
          throw nowLocked > 0
            ? locked(nowLocked)
            : new HttpError('forbidden', 'the current password is wrong');
        }
        await attempt.succeeded().catch((error: unknown) => {
          logger.warn({ err: error }, 'login throttle reset failed');
        });
        await users.setPassword(principal.userId, body.new_password);
        const updated = await users.authRecord(principal.userId);
        if (updated === null) throw new HttpError('unauthorized', 'the access token is invalid');
        const refresh = await refreshTokens.issue(updated.id, deps.refreshLifetimes);
        await trail.record({
          action: 'auth.login',
          principal,
          info,
          resourceId: principal.userId,
          changes: { password: { old: 'set', new: 'changed' } },
        });
        sendJson(res, 200, await tokenPair(updated, refresh.token));
      },

      async 'auth.me'({ res, principal }) {
        const user = await users.get(principal.orgId, principal.userId);
        if (user === null) throw new HttpError('unauthorized', 'the access token is invalid');
        sendJson(res, 200, { ...userJson(user), org_id: user.orgId });
      },
    },
  };
}
