import type { AuditLog } from '@signal/audit';
import { type Cache, RateLimiter } from '@signal/cache';
import type { SignalConfig } from '@signal/config';
import {
  type ControlPlane,
  createControlPlane,
  ENCRYPTED_COLUMNS,
  type PasswordHasher,
} from '@signal/control-plane';
import type { CryptoService } from '@signal/crypto';
import { DELIVERY_WORKER_ENCRYPTED_COLUMNS } from '@signal/delivery-worker';
import { type Router, trustedProxies } from '@signal/http';
import type { IdentityErasure } from '@signal/identity-hub';
import type { Database } from '@signal/store';
import type { Metrics } from '@signal/telemetry';
import { createAuditLogsRoutes } from './audit-logs/audit-logs.routes';
import { createAuthRoutes } from './auth/auth.routes';
import { createAuthenticator } from './auth/authenticate';
import { LoginThrottle, type LoginThrottleOptions } from './auth/login-throttle';
import { createAccessTokens } from './auth/tokens';
import { managementApiSettings } from './config';
import { createReencryptRoutes } from './crypto/reencrypt.routes';
import {
  createReencryptionJobs,
  type ReencryptionJobs,
  type ReencryptionJobsOptions,
} from './crypto/reencrypt-job';
import { createDataLayerRoutes } from './data-layer/data-layer.routes';
import { createDlqRoutes, type DlqDeps } from './dlq/dlq.routes';
import { createAuditTrail } from './http/audit-trail';
import { registerRoutes } from './http/route-kit';
import { createIdentityRoutes } from './identity/identity.routes';
import { createIntegrationsRoutes } from './integrations/integrations.routes';
import type { ApiLogger } from './logger';
import { createPipelinesRoutes } from './pipelines/pipelines.routes';
import { createDeploymentAuthority, DEFAULT_OPERATOR_ORG_SLUG } from './rbac/deployment-authority';
import { createUsersRoutes } from './users/users.routes';

/** Management API rate limit: 100 requests per minute per user (per client address on login/refresh). */
export const ADMIN_RATE_LIMIT = Object.freeze({ limit: 100, windowMs: 60_000 });

export interface ManagementApiOptions {
  readonly db: Database;
  readonly cache: Cache;
  readonly crypto: CryptoService;
  readonly audit: AuditLog;
  readonly logger: ApiLogger;
  readonly metrics: Pick<Metrics, 'counter' | 'gauge'>;
  /** Reads `management.jwtSecret` (JWT_SECRET, ≥ 32 bytes: refused otherwise) and the token TTLs. */
  readonly config: Pick<SignalConfig, 'management'>;
  readonly clock?: () => Date;
  /** The all-in-one shares one control plane between services; built here when absent. */
  readonly controlPlane?: ControlPlane;
  /** Tests only: a cheaper scrypt cost. */
  readonly hasher?: PasswordHasher;
  readonly loginThrottle?: LoginThrottleOptions;
  /**
   * `TRUSTED_PROXY_HOPS`: reverse proxies in front of the API (ingress, load balancer) whose X-Forwarded-For
   * entry names the client. Default 0: the connection's peer, X-Forwarded-For ignored (it is client-written
   * unless a proxy of ours wrote it). Behind a proxy, 0 makes every client one address: one client's login
   * failures lock the others out and the audit log records only the proxy.
   */
  readonly trustedProxyHops?: number;
  /**
   * `TRUSTED_PROXY_CIDRS`: the addresses of those proxies. With it, X-Forwarded-For counts only when the peer
   * and each hop are listed, so a client that reaches the API directly cannot choose the address its login
   * failures and audit entries are recorded under.
   */
  readonly trustedProxyCidrs?: readonly string[];
  /**
   * Slug of the deployment's operator org, whose admins and owner hold the deployment authority: starting the
   * re-encryption job and reading its deployment-wide status, and the audit entries recorded without an org.
   * Default `DEFAULT_OPERATOR_ORG_SLUG` ("demo"): the org the all-in-one seeds for its bootstrap admin.
   * `null`: nobody over HTTP (those routes answer 403; `signal-cli crypto-reencrypt` still works).
   */
  readonly operatorOrg?: string | null;
  /**
   * Dead letters (`/v1/admin/dlq`): the database holding the delivery worker's `delivery_dlq` table, the bus a
   * replay publishes to and the deployment's namespace (topic names). Absent: those routes answer 503.
   * Letters are opened with `crypto`. When present, the delivery worker's sealed columns (`delivery_dlq.letter`
   * and `delivery_retries.payload`, created by the same migrations) join the re-encryption job's columns (those
   * `reencryption.columns` does not list already), so a key rotation never leaves dead letters or scheduled
   * retries under a key about to be dropped.
   */
  readonly dlq?: DlqDeps;
  /**
   * The identity hub's erasure (`createIdentityErasure`), for `DELETE /v1/admin/identity/{id}`. It records
   * `identity.erased` itself. Absent: that route answers 503.
   */
  readonly identityErasure?: Pick<IdentityErasure, 'eraseSubject'>;
  readonly reencryption?: Omit<
    ReencryptionJobsOptions,
    'db' | 'crypto' | 'audit' | 'logger' | 'metrics' | 'clock'
  > & {
    /** How often to look for a running job whose lease expired (its process died). Default: the lease time. */
    readonly watchIntervalMs?: number;
  };
}

export interface ManagementApi {
  /** Mounts every `/v1/admin/*` route on the given router (the all-in-one's single port, or `main.ts`'s). */
  register(router: Router): void;
  readonly controlPlane: ControlPlane;
  readonly reencryption: ReencryptionJobs;
  /** Prepares the login path and takes over any re-encryption job whose process died (then keeps watching). */
  start(): Promise<void>;
  /** Pauses this process's re-encryption loop (lease released, so another process continues) and stops watching. */
  stop(): Promise<void>;
}

export function createManagementApi(options: ManagementApiOptions): ManagementApi {
  const settings = managementApiSettings(options.config);
  const clock = options.clock ?? (() => new Date());
  const { db, cache, crypto, audit, logger, metrics } = options;
  const hasher = options.hasher ?? options.controlPlane?.hasher;
  const controlPlane =
    options.controlPlane ?? createControlPlane({ db, crypto, clock, ...(hasher ? { hasher } : {}) });
  const passwordHasher = hasher ?? controlPlane.hasher;

  const tokens = createAccessTokens({
    secret: settings.jwtSecret,
    ttlSeconds: settings.accessTokenTtlSeconds,
    clock,
  });
  const trail = createAuditTrail(audit, logger);
  const deploymentAuthority = createDeploymentAuthority({
    orgs: controlPlane.orgs,
    operatorOrgSlug: options.operatorOrg === undefined ? DEFAULT_OPERATOR_ORG_SLUG : options.operatorOrg,
  });
  const { watchIntervalMs, ...jobOptions } = options.reencryption ?? {};
  const jobColumns = jobOptions.columns ?? ENCRYPTED_COLUMNS;
  const reencryption = createReencryptionJobs({
    ...jobOptions,
    columns:
      options.dlq === undefined
        ? jobColumns
        : [
            ...jobColumns,
            ...DELIVERY_WORKER_ENCRYPTED_COLUMNS.filter((w) => !jobColumns.some((c) => c.name === w.name)),
          ],
    db,
    crypto,
    audit,
    logger,
    metrics,
    clock,
  });
  const auth = createAuthRoutes({
    controlPlane,
    hasher: passwordHasher,
    tokens,
    throttle: new LoginThrottle(cache, clock, options.loginThrottle),
    trail,
    logger,
    refreshLifetimes: {
      ttlSeconds: settings.refreshTokenTtlSeconds,
      sessionMaxAgeSeconds: settings.sessionMaxAgeSeconds,
    },
  });
  const handlers = {
    ...auth.handlers,
    ...createUsersRoutes({ controlPlane, trail }),
    ...createPipelinesRoutes({ controlPlane, trail }),
    ...createIntegrationsRoutes({ controlPlane, trail }),
    ...createDataLayerRoutes({ controlPlane, trail }),
    ...createAuditLogsRoutes({ audit, trail, logger, deploymentAuthority }),
    ...createReencryptRoutes({ jobs: reencryption }),
    ...createDlqRoutes({ dlq: options.dlq, crypto, trail }),
    ...createIdentityRoutes({ identityErasure: options.identityErasure }),
  };
  const rateLimiter = new RateLimiter(cache, { ...ADMIN_RATE_LIMIT, name: 'admin-api' });
  const authenticate = createAuthenticator({ tokens, users: controlPlane.users });
  const proxies = trustedProxies(options.trustedProxyCidrs);
  const watchEveryMs = watchIntervalMs ?? jobOptions.leaseMs ?? 30_000;
  let watcher: NodeJS.Timeout | undefined;

  return {
    controlPlane,
    reencryption,
    register(router) {
      registerRoutes(router, handlers, {
        authenticate,
        deploymentAuthority,
        rateLimiter,
        logger,
        trustedProxyHops: options.trustedProxyHops ?? 0,
        trustedProxies: proxies,
      });
    },
    async start() {
      await auth.prepare();
      await reencryption.resumeOrphaned();
      watcher = setInterval(() => {
        reencryption.resumeOrphaned().catch((error: unknown) => {
          logger.warn({ err: error }, 'could not check for orphaned re-encryption jobs');
        });
      }, watchEveryMs);
      watcher.unref();
    },
    async stop() {
      if (watcher !== undefined) clearInterval(watcher);
      watcher = undefined;
      await reencryption.stop();
    },
  };
}
