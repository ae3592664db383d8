import type { OrgsRepository, Role } from '@signal/control-plane';
import type { Principal } from '../auth/authenticate';
import { ROLE_RANK } from './permissions';

/**
 * The slug of the deployment's **operator org** unless configured otherwise: the one `ensureDemoOrg` gives
 * the org the all-in-one seeds on its first start for `SIGNAL_BOOTSTRAP_ADMIN_EMAIL` (the bootstrap admin is
 * its owner). A test pins the two together.
 */
export const DEFAULT_OPERATOR_ORG_SLUG = 'demo';

/** The least role in the operator org that acts for the deployment (ARCHITECTURE §4: "admin or owner"). */
export const OPERATOR_MIN_ROLE: Role = 'admin';

/**
 * Who may act on the deployment as a whole rather than on one org: the re-encryption job (it re-seals every
 * org's data and its figures count every org's records) and the audit entries recorded without an org (key
 * events, decrypt failures naming any org's rows). Roles are per org, so an org's admin is not enough: the
 * authority is an admin or owner of the operator org, the org that runs the deployment. It is tied to the
 * org, never to an email (any org's admin can invite any email into their own org).
 */
export interface DeploymentAuthority {
  /** True when `principal` is an admin or owner of the operator org. */
  holds(principal: Pick<Principal, 'orgId' | 'role'>): Promise<boolean>;
}

export function createDeploymentAuthority(deps: {
  readonly orgs: Pick<OrgsRepository, 'get'>;
  /** The operator org's slug; null: nobody holds it over HTTP (use `signal-cli`, which needs the keys). */
  readonly operatorOrgSlug: string | null;
}): DeploymentAuthority {
  const { orgs, operatorOrgSlug } = deps;
  return {
    async holds(principal) {
      if (operatorOrgSlug === null) return false;
      if (ROLE_RANK[principal.role] < ROLE_RANK[OPERATOR_MIN_ROLE]) return false;
      // Looked up per call (these routes are rare): an org created after start-up, e.g. by the all-in-one's
      // first start, is found; slugs are unique and no route changes them.
      const org = await orgs.get(principal.orgId);
      return org !== null && org.slug === operatorOrgSlug;
    },
  };
}
