import type { Role } from '@signal/control-plane';

/**
 * Roles form a strict hierarchy (product docs, "Roles & Permissions"): owner ⊃ admin ⊃ editor ⊃ viewer.
 * - owner: everything, including ownership transfer (and billing / deleting the org, not built yet);
 * - admin: users, audit logs, the Org Data Layer, deletes, key rotation and crypto operations;
 * - editor: create and edit pipelines and integrations;
 * - viewer: read (and the debugger: inspecting dead letters, whose personal data is masked).
 */
export const ROLE_RANK: Readonly<Record<Role, number>> = Object.freeze({
  viewer: 1,
  editor: 2,
  admin: 3,
  owner: 4,
});

/** Each permission and the least role that holds it. Routes name a permission, never a role. */
export const PERMISSIONS = Object.freeze({
  /** Any signed-in user acting on their own session (logout, password, who am I). */
  session: 'viewer',
  'pipelines:read': 'viewer',
  'pipelines:write': 'editor',
  'pipelines:delete': 'admin',
  /** Rotating or revoking a pipeline key or HMAC secret breaks senders that do not follow: admin. */
  'pipelines:rotate-credentials': 'admin',
  'integrations:read': 'viewer',
  'integrations:write': 'editor',
  'integrations:delete': 'admin',
  'data-layer:read': 'viewer',
  'data-layer:write': 'admin',
  'users:read': 'admin',
  'users:manage': 'admin',
  'org:transfer-ownership': 'owner',
  'audit-logs:read': 'admin',
  /**
   * Its routes are also scoped to the deployment (`scope: 'deployment'` in the route table): the job re-seals
   * every org's data, so only the operator org's admins and owner pass (`deployment-authority.ts`).
   */
  'crypto:manage': 'admin',
  /**
   * Dead letters: listing and inspecting them is debugging (the product's "viewer: read + debugger"); the
   * originals are shown with personal data masked, so nothing a viewer may not see leaves the API.
   */
  'dlq:read': 'viewer',
  /**
   * Replaying dead letters re-sends events to vendors: an operational edit, like editing an integration, so
   * editor. It cannot bypass anything an editor could not already cause: a replay runs the whole delivery path
   * again (the ledger never re-sends an event a vendor accepted, stage-2 consent is re-checked against the
   * latest state), it deletes nothing and changes no configuration. Admin would put routine incident recovery
   * (a vendor outage, fixed credentials) out of reach of the people who run the integrations.
   */
  'dlq:replay': 'editor',
  /** Erasing a visitor's identity data (data-subject requests) is irreversible: admin, like other deletes. */
  'identity:erase': 'admin',
} as const satisfies Readonly<Record<string, Role>>);

export type Permission = keyof typeof PERMISSIONS;

export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[PERMISSIONS[permission]];
}
