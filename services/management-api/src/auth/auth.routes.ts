import { randomBytes } from 'node:crypto';
import type { ControlPlane, PasswordHasher, UserAuthRecord } from '@signal/control-plane';
import { passwordSchema } from '@signal/control-plane';
import { HttpError, sendJson } from '@signal/http';
import { z } from 'zod';
import type { AuditTrail } from '../http/audit-trail';
import { readBody, readOptionalBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { userJson } from '../http/serialize';
import type { ApiLogger } from '../logger';
import type { LoginThrottle } from './login-throttle';
import type { AccessTokens } from './tokens';

const loginSchema = z.strictObject({
  email: z.string().min(1).max(320),
  password: z.string().min(1).max(1024),
  /** Org slug, needed only when the email belongs to users in several orgs. */
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
  readonly refreshTokenTtlSeconds: number;
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

  async function lockedFor(email: string, ip: string): Promise<number> {
    try {
      return await throttle.lockedForMs(email, ip);
    } catch (error) {
      logger.error({ err: error }, 'login throttle unavailable; login refused');
      throw new HttpError('unavailable', 'login is temporarily unavailable, retry later');
    }
  }

  return {
    async prepare() {
      await standIn();
    },

    handlers: {
      async 'auth.login'({ req, res, info }) {
        const body = await readBody(req, loginSchema);
        const ip = info.ip ?? 'unknown';
        const lockMs = await lockedFor(body.email, ip);
        if (lockMs > 0) {
          await trail.record({
            action: 'auth.login_failed',
            principal: null,
            info,
            changes: { reason: { old: null, new: 'locked_out' } },
          });
          throw locked(lockMs);
        }
        const candidates = await users.findForLogin(body.email, body.org);
        // Ambiguous (the email exists in several orgs and no org was named) is a failure like any other.
        const user = candidates.length === 1 ? candidates[0] : undefined;
        const valid = await hasher.verify(body.password, user?.passwordHash ?? (await standIn()));
        if (user === undefined || !valid) {
          const nowLocked = await throttle.recordFailure(body.email, ip).catch((error: unknown) => {
            logger.error({ err: error }, 'login throttle unavailable');
            return 0;
          });
          await trail.record({
            action: 'auth.login_failed',
            principal: null,
            info,
            // Only an email that names a real user is recorded (never what else was typed, never a password).
            subject: user === undefined ? null : { id: user.id, email: user.email },
            resourceId: user?.id ?? null,
            changes: { reason: { old: null, new: 'invalid_credentials' } },
          });
          throw nowLocked > 0 ? locked(nowLocked) : invalidCredentials();
        }
        await throttle.reset(body.email, ip).catch((error: unknown) => {
          logger.warn({ err: error }, 'login throttle reset failed');
        });
        if (hasher.needsRehash(user.passwordHash)) {
          await users.rehash(user.id, user.passwordHash, await hasher.hash(body.password));
        }
        const refresh = await refreshTokens.issue(user.id, deps.refreshTokenTtlSeconds);
        const pair = await tokenPair(user, refresh.token);
        await trail.record({
          action: 'auth.login',
          principal: null,
          info,
          subject: { id: user.id, email: user.email },
          resourceId: user.id,
        });
        sendJson(res, 200, pair);
      },

      async 'auth.refresh'({ req, res, info }) {
        const body = await readBody(req, refreshSchema);
        const outcome = await refreshTokens.rotate(body.refresh_token, deps.refreshTokenTtlSeconds);
        if (outcome.kind === 'invalid') throw new HttpError('unauthorized', 'the refresh token is invalid');
        const user = await users.authRecord(outcome.userId);
        if (outcome.kind === 'reused') {
          await trail.record({
            action: 'auth.refresh_reuse_detected',
            principal: null,
            info,
            subject: user === null ? null : { id: user.id, email: user.email },
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
        const ip = info.ip ?? 'unknown';
        const lockMs = await lockedFor(record.email, ip);
        if (lockMs > 0) throw locked(lockMs);
        if (!(await hasher.verify(body.current_password, record.passwordHash))) {
          await throttle.recordFailure(record.email, ip).catch(() => 0);
          throw new HttpError('forbidden', 'the current password is wrong');
        }
        await users.setPassword(principal.userId, body.new_password);
        const updated = await users.authRecord(principal.userId);
        if (updated === null) throw new HttpError('unauthorized', 'the access token is invalid');
        const refresh = await refreshTokens.issue(updated.id, deps.refreshTokenTtlSeconds);
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
