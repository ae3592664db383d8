import type { IncomingMessage } from 'node:http';
import type { Role, UsersRepository } from '@signal/control-plane';
import { HttpError } from '@signal/http';
import type { AccessTokens } from './tokens';

/** Who is calling, as established from a verified token and the user's current row. */
export interface Principal {
  readonly userId: string;
  readonly orgId: string;
  /** The role stored now (a role change also voids older tokens, so this equals the token's claim). */
  readonly role: Role;
  readonly email: string;
  readonly mustChangePassword: boolean;
}

const BEARER = /^Bearer[ ]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

const challenge = { 'www-authenticate': 'Bearer realm="signal-admin"' };

function unauthorized(message: string): HttpError {
  return new HttpError('unauthorized', message, { headers: challenge });
}

/**
 * Bearer-token authentication: the JWT must verify (HS256 only, iss/aud/exp), its user must still exist in
 * the same org, and it must have been issued after the user's "tokens valid after" cut-off, so logout,
 * password changes, role changes and refresh-token reuse revoke access tokens immediately.
 */
export function createAuthenticator(deps: {
  readonly tokens: Pick<AccessTokens, 'verify'>;
  readonly users: Pick<UsersRepository, 'authRecord'>;
}): (req: IncomingMessage) => Promise<Principal> {
  return async (req) => {
    const header = req.headers.authorization;
    if (header === undefined) throw unauthorized('an access token is required (Authorization: Bearer …)');
    const match = BEARER.exec(header.trim());
    if (match?.[1] === undefined) throw unauthorized('the Authorization header must be "Bearer <token>"');
    const verified = await deps.tokens.verify(match[1]);
    if (verified === 'expired') throw unauthorized('the access token has expired: refresh it');
    if (verified === 'invalid') throw unauthorized('the access token is invalid');
    const user = await deps.users.authRecord(verified.userId);
    if (user === null || user.orgId !== verified.orgId) throw unauthorized('the access token is invalid');
    const cutoff = user.tokensValidAfter?.getTime();
    if (cutoff !== undefined && verified.issuedAtMs <= cutoff) {
      throw unauthorized('the access token has been revoked');
    }
    if (user.role !== verified.role) throw unauthorized('the access token has been revoked');
    return {
      userId: user.id,
      orgId: user.orgId,
      role: user.role,
      email: user.email,
      mustChangePassword: user.mustChangePassword,
    };
  };
}
