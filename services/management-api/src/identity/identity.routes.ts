import { HttpError, sendJson } from '@signal/http';
import type { IdentityErasure } from '@signal/identity-hub';
import type { RouteHandlers } from '../http/route-kit';

/**
 * `DELETE /identity/{id}`: erases what the identity graph holds about a visitor named by user id or anonymous
 * id (data-subject erasure). The hub's erasure records `identity.erased` itself (with the actor, profile ids
 * and counts, never the subject id), so this route does not record it again. 404 when no profile matched
 * (the hub still records the attempt, as erasure is idempotent).
 */
export function createIdentityRoutes(deps: {
  readonly identityErasure: Pick<IdentityErasure, 'eraseSubject'> | undefined;
}): Pick<RouteHandlers, 'identity.erase'> {
  return {
    async 'identity.erase'({ res, params, info, principal }) {
      if (deps.identityErasure === undefined) {
        throw new HttpError(
          'unavailable',
          'identity erasure is not available in this process: it needs the identity hub graph',
        );
      }
      const counts = await deps.identityErasure.eraseSubject(params.id ?? '', {
        user_id: principal.userId,
        user_email: principal.email,
        ip_address: info.ip,
        user_agent: info.userAgent,
      });
      if (counts.profiles === 0) throw new HttpError('not_found', 'no identity matched this id');
      sendJson(res, 200, {
        erased: { profiles: counts.profiles, identifiers: counts.identifiers, traits: counts.traits },
      });
    },
  };
}
