import { type ControlPlane, inviteUserSchema, roleSchema, type User } from '@signal/control-plane';
import { HttpError, sendJson } from '@signal/http';
import { z } from 'zod';
import { type AuditTrail, diff } from '../http/audit-trail';
import { pageQuery, readBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';
import { pageJson, userJson } from '../http/serialize';
import { ROLE_RANK } from '../rbac/permissions';

const roleChangeSchema = z.strictObject({ role: roleSchema });
const USER_FIELDS = ['email', 'name', 'role'] as const satisfies readonly (keyof User)[];

export function createUsersRoutes(deps: {
  readonly controlPlane: Pick<ControlPlane, 'users'>;
  readonly trail: AuditTrail;
}): Pick<
  RouteHandlers,
  'users.list' | 'users.invite' | 'users.get' | 'users.update' | 'users.remove' | 'users.transferOwnership'
> {
  const { users } = deps.controlPlane;
  const { trail } = deps;

  async function load(orgId: string, userId: string): Promise<User> {
    const user = await users.get(orgId, userId);
    if (user === null) throw new HttpError('not_found', 'user not found');
    return user;
  }

  return {
    async 'users.list'({ res, query, principal }) {
      sendJson(res, 200, pageJson(await users.list(principal.orgId, pageQuery(query)), userJson));
    },

    async 'users.invite'({ req, res, info, principal }) {
      const body = await readBody(req, inviteUserSchema);
      const { user, oneTimePassword } = await users.invite(principal.orgId, body);
      await trail.record({
        action: 'user.invited',
        principal,
        info,
        resourceId: user.id,
        changes: diff(null, user, USER_FIELDS),
      });
      // Shown once: the invited user logs in with it and must then choose their own password.
      sendJson(res, 201, { ...userJson(user), one_time_password: oneTimePassword });
    },

    async 'users.get'({ res, params, principal }) {
      sendJson(res, 200, userJson(await load(principal.orgId, params.id ?? '')));
    },

    async 'users.update'({ req, res, params, info, principal }) {
      const body = await readBody(req, roleChangeSchema);
      const target = await load(principal.orgId, params.id ?? '');
      // An admin cannot raise anyone above themselves (only the owner hands out ownership, by transfer).
      if (ROLE_RANK[body.role] > ROLE_RANK[principal.role]) {
        throw new HttpError('forbidden', `the ${principal.role} role cannot grant the ${body.role} role`);
      }
      const { before, after } = await users.changeRole(principal.orgId, target.id, body.role);
      const changes = diff(before, after, ['role']);
      if (Object.keys(changes).length > 0) {
        await trail.record({ action: 'user.role_changed', principal, info, resourceId: after.id, changes });
      }
      sendJson(res, 200, userJson(after));
    },

    async 'users.remove'({ res, params, info, principal }) {
      const removed = await users.remove(principal.orgId, params.id ?? '');
      await trail.record({
        action: 'user.removed',
        principal,
        info,
        resourceId: removed.id,
        changes: diff(removed, null, USER_FIELDS),
      });
      sendJson(res, 204, null);
    },

    async 'users.transferOwnership'({ res, params, info, principal }) {
      const [owner, target] = await users.transferOwnership(
        principal.orgId,
        principal.userId,
        params.id ?? '',
      );
      if (owner === undefined || target === undefined) throw new HttpError('internal', 'transfer failed');
      await trail.record({
        action: 'org.ownership_transferred',
        principal,
        info,
        resourceType: 'org',
        resourceId: principal.orgId,
        changes: { owner_user_id: { old: owner.before.id, new: target.after.id } },
      });
      sendJson(res, 200, { previous_owner: userJson(owner.after), owner: userJson(target.after) });
    },
  };
}
