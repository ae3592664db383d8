import { HttpError, sendJson } from '@signal/http';
import type { IdentityErasure } from '@signal/identity-hub';
import type { RouteHandlers } from '../http/route-kit';

/**
 * `DELETE /identity/{id}`: erases what the identity graph holds about a visitor of the caller's org (the org of
 * the authenticated principal, from the access token) named by user id or anonymous id (data-subject
 * erasure). The hub's erasure records `identity.erased` itself (with the actor, profile ids and counts, never
 * the subject id), so this route does not record it again. 404 when no profile of the caller's org matched
 * (the hub still records the attempt, as erasure is idempotent): the same answer, body and work whether the
 * id is unknown or belongs to another org, which the graph cannot even tell apart (its digests are per org).
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
      const counts = await deps.identityErasure.eraseSubject(principal.orgId, params.id ?? '', {
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
