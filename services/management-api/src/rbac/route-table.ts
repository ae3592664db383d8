import type { HttpMethod } from '@signal/http';
import type { Permission } from './permissions';

/** Every route of the Management API under this prefix. */
export const ADMIN_PREFIX = '/v1/admin';

export interface RouteSpec {
  readonly id: string;
  readonly method: HttpMethod;
  /** Path under `ADMIN_PREFIX`, find-my-way syntax (`/pipelines/:id`). */
  readonly path: string;
  /** `public`: no token (login, refresh); otherwise the permission the caller's role must hold. */
  readonly permission: Permission | 'public';
  /**
   * `deployment`: the route acts on the whole deployment (every org's data), so on top of the permission the
   * caller must hold the deployment authority: an admin or owner of the operator org
   * (`deployment-authority.ts`). Anyone else gets 403, whatever their role in their own org.
   */
  readonly scope?: 'deployment';
}

/**
 * The one declarative table of routes and the permission each needs. Registration wraps every handler with
 * authentication and this check, and the RBAC test runs every route × every role from this same table, so a
 * route cannot exist without a rule, and a rule cannot drift from what is enforced.
 */
export const ROUTES = [
  { id: 'auth.login', method: 'POST', path: '/auth/login', permission: 'public' },
  { id: 'auth.refresh', method: 'POST', path: '/auth/refresh', permission: 'public' },
  { id: 'auth.logout', method: 'POST', path: '/auth/logout', permission: 'session' },
  { id: 'auth.password', method: 'POST', path: '/auth/password', permission: 'session' },
  { id: 'auth.me', method: 'GET', path: '/auth/me', permission: 'session' },

  { id: 'users.list', method: 'GET', path: '/users', permission: 'users:read' },
  { id: 'users.invite', method: 'POST', path: '/users', permission: 'users:manage' },
  { id: 'users.get', method: 'GET', path: '/users/:id', permission: 'users:read' },
  { id: 'users.update', method: 'PATCH', path: '/users/:id', permission: 'users:manage' },
  { id: 'users.remove', method: 'DELETE', path: '/users/:id', permission: 'users:manage' },
  {
    id: 'users.transferOwnership',
    method: 'POST',
    path: '/users/:id/transfer-ownership',
    permission: 'org:transfer-ownership',
  },

  { id: 'pipelines.list', method: 'GET', path: '/pipelines', permission: 'pipelines:read' },
  { id: 'pipelines.create', method: 'POST', path: '/pipelines', permission: 'pipelines:write' },
  { id: 'pipelines.get', method: 'GET', path: '/pipelines/:id', permission: 'pipelines:read' },
  { id: 'pipelines.update', method: 'PATCH', path: '/pipelines/:id', permission: 'pipelines:write' },
  { id: 'pipelines.delete', method: 'DELETE', path: '/pipelines/:id', permission: 'pipelines:delete' },
  { id: 'pipelines.keys', method: 'GET', path: '/pipelines/:id/keys', permission: 'pipelines:read' },
  {
    id: 'pipelines.rotateKey',
    method: 'POST',
    path: '/pipelines/:id/rotate-key',
    permission: 'pipelines:rotate-credentials',
  },
  {
    id: 'pipelines.revokeKey',
    method: 'POST',
    path: '/pipelines/:id/keys/:keyId/revoke',
    permission: 'pipelines:rotate-credentials',
  },
  {
    id: 'pipelines.rotateSecret',
    method: 'POST',
    path: '/pipelines/:id/rotate-secret',
    permission: 'pipelines:rotate-credentials',
  },

  {
    id: 'integrations.list',
    method: 'GET',
    path: '/pipelines/:id/integrations',
    permission: 'integrations:read',
  },
  {
    id: 'integrations.create',
    method: 'POST',
    path: '/pipelines/:id/integrations',
    permission: 'integrations:write',
  },
  { id: 'integrations.get', method: 'GET', path: '/integrations/:id', permission: 'integrations:read' },
  { id: 'integrations.update', method: 'PATCH', path: '/integrations/:id', permission: 'integrations:write' },
  {
    id: 'integrations.delete',
    method: 'DELETE',
    path: '/integrations/:id',
    permission: 'integrations:delete',
  },

  { id: 'dataLayer.get', method: 'GET', path: '/data-layer', permission: 'data-layer:read' },
  { id: 'dataLayer.put', method: 'PUT', path: '/data-layer', permission: 'data-layer:write' },

  { id: 'auditLogs.list', method: 'GET', path: '/audit-logs', permission: 'audit-logs:read' },
  { id: 'auditLogs.export', method: 'GET', path: '/audit-logs/export', permission: 'audit-logs:read' },

  // The job re-seals every org's records and its status counts them all: the deployment's, not an org's.
  {
    id: 'crypto.reencryptStart',
    method: 'POST',
    path: '/crypto/re-encrypt',
    permission: 'crypto:manage',
    scope: 'deployment',
  },
  {
    id: 'crypto.reencryptStatus',
    method: 'GET',
    path: '/crypto/re-encrypt',
    permission: 'crypto:manage',
    scope: 'deployment',
  },

  { id: 'dlq.list', method: 'GET', path: '/dlq', permission: 'dlq:read' },
  { id: 'dlq.get', method: 'GET', path: '/dlq/:id', permission: 'dlq:read' },
  { id: 'dlq.replay', method: 'POST', path: '/dlq/replay', permission: 'dlq:replay' },

  { id: 'identity.erase', method: 'DELETE', path: '/identity/:id', permission: 'identity:erase' },
] as const satisfies readonly RouteSpec[];

export type RouteId = (typeof ROUTES)[number]['id'];

/** Routes a user holding a one-time password may use before choosing their own. */
export const ALLOWED_WITH_ONE_TIME_PASSWORD: ReadonlySet<RouteId> = new Set<RouteId>([
  'auth.password',
  'auth.logout',
  'auth.me',
]);
