import type { IncomingMessage } from 'node:http';
import { type Cache, RateLimiter } from '@signal/cache';
import { clientBucket, clientIp, trustedProxies } from '@signal/http';
import type { Metrics } from '@signal/telemetry';
import type { IdentityHubSettings } from '../config';
import type { IdentityHubLogger } from '../ports';

export type RateLimitedEndpoint = 'token' | 'redirect' | 'resolve';
export type RateLimitScope = 'client' | 'pipeline';

export type RateVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly limit: number; readonly retryAfterSeconds: number };

export interface IdentityRateLimits {
  /** One request of this client (its address, from TRUSTED_PROXY_HOPS) to `endpoint`. */
  byClient(req: IncomingMessage, endpoint: RateLimitedEndpoint): Promise<RateVerdict>;
  /** One request for this pipeline to `endpoint` (the pipeline of the key, or of the token's claims). */
  byPipeline(pipelineId: string, endpoint: RateLimitedEndpoint): Promise<RateVerdict>;
}

const WINDOW_MS = 1000;
const ALLOWED: RateVerdict = Object.freeze({ allowed: true });

/**
 * Fixed-window limits (the cache package's `RateLimiter`) on the token, redirect and resolve endpoints: per
 * client address and per pipeline, each endpoint counted on its own.
 *
 * Why: every successful resolve pins its token id in the single-use store until the token could no longer
 * open (~125 s), and in embedded mode that store is the in-process cache the gateway's replay markers and
 * the processor's dedup use too. Unlimited, anyone (any `_dfid`, the public pipeline key, any Origin/Host)
 * fills it and everything that needs `setIfAbsent` fails closed. With limits, one pipeline pins at most
 * IDENTITY_RATE_LIMIT_RPS × (token TTL + skew) ids, and one client can spend only part of that.
 */
export function createIdentityRateLimits(deps: {
  readonly counters: Pick<Cache, 'incrementWindow'>;
  readonly settings: Pick<
    IdentityHubSettings,
    'rateLimitRps' | 'ipRateLimitRps' | 'trustedProxyHops' | 'trustedProxyCidrs'
  >;
  readonly logger: IdentityHubLogger;
  readonly metrics: Metrics;
}): IdentityRateLimits {
  const { counters, settings, logger, metrics } = deps;
  const client = new RateLimiter(counters, {
    name: 'identity-client',
    limit: settings.ipRateLimitRps,
    windowMs: WINDOW_MS,
  });
  const pipeline = new RateLimiter(counters, {
    name: 'identity-pipeline',
    limit: settings.rateLimitRps,
    windowMs: WINDOW_MS,
  });
  const failures = metrics.counter(
    'signal_identity_rate_limit_errors_total',
    'Rate-limit checks the counter store did not answer; the request was let through (fail open)',
    ['scope'],
  );

  async function check(
    limiter: RateLimiter,
    scope: RateLimitScope,
    subject: string,
    endpoint: RateLimitedEndpoint,
  ): Promise<RateVerdict> {
    try {
      const decision = await limiter.check(`${endpoint}:${subject}`);
      if (decision.allowed) return ALLOWED;
      return {
        allowed: false,
        limit: decision.limit,
        retryAfterSeconds: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
      };
    } catch (err) {
      // Fail open, like the gateway. The limit protects the single-use store, and that store guards itself:
      // a resolve whose consume cannot reach it is refused (503, fail closed), so admitting requests while
      // the counters are unreachable (in production the same Redis, then down for consumes too) pins nothing
      // more. Failing closed instead would turn a counter hiccup into an outage of every cross-domain link,
      // the redirect's navigation included, and add nothing to replay safety.
      failures.inc({ scope });
      logger.warn({ err, scope, endpoint }, 'rate limiter unavailable; admitting the request');
      return ALLOWED;
    }
  }

  const proxies = trustedProxies(settings.trustedProxyCidrs);
  return {
    byClient: (req, endpoint) =>
      check(client, 'client', clientBucket(clientIp(req, settings.trustedProxyHops, proxies)), endpoint),
    byPipeline: (pipelineId, endpoint) => check(pipeline, 'pipeline', pipelineId, endpoint),
  };
}
