import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RateLimiter } from '@signal/cache';
import { HttpError, type Router, sendHttpError, type TrustedProxies } from '@signal/http';
import type { Principal } from '../auth/authenticate';
import type { ApiLogger } from '../logger';
import type { DeploymentAuthority } from '../rbac/deployment-authority';
import { roleAllows } from '../rbac/permissions';
import { ADMIN_PREFIX, ALLOWED_WITH_ONE_TIME_PASSWORD, ROUTES, type RouteSpec } from '../rbac/route-table';
import { toHttpError } from './errors';
import { type RequestInfo, requestInfo } from './request';

export interface PublicContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly info: RequestInfo;
}

export interface AuthedContext extends PublicContext {
  readonly principal: Principal;
}

type Route = (typeof ROUTES)[number];
type HandlerFor<R extends Route> = R['permission'] extends 'public'
  ? (ctx: PublicContext) => Promise<void>
  : (ctx: AuthedContext) => Promise<void>;

/** One handler per route of the table: the compiler refuses a route without a handler. */
export type RouteHandlers = { readonly [R in Route as R['id']]: HandlerFor<R> };

export interface RouteKitDeps {
  readonly authenticate: (req: IncomingMessage) => Promise<Principal>;
  /** Checked on the routes the table scopes to the deployment (`scope: 'deployment'`). */
  readonly deploymentAuthority: Pick<DeploymentAuthority, 'holds'>;
  /** 100 requests per minute per user (per client address on the public auth routes). */
  readonly rateLimiter: Pick<RateLimiter, 'check'>;
  readonly logger: ApiLogger;
  /** `TRUSTED_PROXY_HOPS`: reverse proxies whose X-Forwarded-For entry names the client (`requestInfo`). */
  readonly trustedProxyHops: number;
  /** `TRUSTED_PROXY_CIDRS`, compiled: those proxies' addresses. Absent: hops are counted, not checked. */
  readonly trustedProxies?: TrustedProxies | undefined;
}

async function enforceRateLimit(deps: RouteKitDeps, subject: string): Promise<void> {
  let decision: Awaited<ReturnType<RateLimiter['check']>>;
  try {
    decision = await deps.rateLimiter.check(subject);
  } catch (error) {
    // Availability over throttling for the admin API; login lockout, which guards passwords, fails closed.
    deps.logger.warn({ err: error }, 'rate limiter unavailable; request allowed');
    return;
  }
  if (!decision.allowed) {
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    throw new HttpError('rate_limited', `too many requests: retry in ${seconds} s`, {
      headers: { 'retry-after': String(seconds) },
    });
  }
}

async function dispatch(
  route: RouteSpec,
  handler: ((ctx: PublicContext) => Promise<void>) | ((ctx: AuthedContext) => Promise<void>),
  deps: RouteKitDeps,
  base: PublicContext,
): Promise<void> {
  if (route.permission === 'public') {
    await enforceRateLimit(deps, `ip:${base.info.ip ?? 'unknown'}`);
    await (handler as (ctx: PublicContext) => Promise<void>)(base);
    return;
  }
  const principal = await deps.authenticate(base.req);
  await enforceRateLimit(deps, `user:${principal.userId}`);
  if (!roleAllows(principal.role, route.permission)) {
    throw new HttpError('forbidden', `the ${principal.role} role may not do this`);
  }
  if (route.scope === 'deployment' && !(await deps.deploymentAuthority.holds(principal))) {
    throw new HttpError(
      'forbidden',
      "this acts on the whole deployment (every org's data): only an admin or owner of the deployment's operator org may use it",
    );
  }
  if (
    principal.mustChangePassword &&
    !(ALLOWED_WITH_ONE_TIME_PASSWORD as ReadonlySet<string>).has(route.id)
  ) {
    throw new HttpError(
      'forbidden',
      'choose your own password first (POST /v1/admin/auth/password); the one-time password only allows that',
    );
  }
  await (handler as (ctx: AuthedContext) => Promise<void>)({ ...base, principal });
}

/**
 * Mounts every route of the table on `router` under `/v1/admin`, each wrapped with authentication, the rate
 * limit, the table's permission check and the error mapping.
 */
export function registerRoutes(router: Router, handlers: RouteHandlers, deps: RouteKitDeps): void {
  for (const route of ROUTES) {
    const handler = handlers[route.id];
    router.on(route.method, `${ADMIN_PREFIX}${route.path}`, async (req, res, { params, query }) => {
      try {
        await dispatch(route, handler, deps, {
          req,
          res,
          params,
          query,
          info: requestInfo(req, deps.trustedProxyHops, deps.trustedProxies),
        });
      } catch (error) {
        const mapped = toHttpError(error);
        if (mapped === undefined) throw error;
        if (mapped.status >= 500) {
          deps.logger.error({ err: mapped.cause ?? error, route: route.id }, 'request failed');
        }
        if (res.headersSent) {
          res.destroy();
          return;
        }
        sendHttpError(res, mapped);
      }
    });
  }
}
