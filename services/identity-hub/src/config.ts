import { ipOrCidrItem, type SignalConfig } from '@signal/config';
import { z } from 'zod';
import { IdentityHubError } from './errors';
import { MAX_TOKEN_TTL_SECONDS } from './tokens/claims';
import { isHostName } from './tokens/hosts';

/** The Identity Hub's settings, checked once at start-up and frozen. */
export interface IdentityHubSettings {
  /** SIGNAL_NAMESPACE: topic and consumer-group prefix. */
  readonly namespace: string;
  /** IDENTITY_TOKEN_TTL: token lifetime in seconds, 5-120 (default 120). */
  readonly tokenTtlSeconds: number;
  /** IDENTITY_CLOCK_SKEW: tolerated clock difference between hub instances, 0-30 s (default 5). */
  readonly clockSkewSeconds: number;
  /** IDENTITY_PUBLIC_HOSTS: when set, the only Host header values the hub answers for. */
  readonly publicHosts: readonly string[];
  /** COOKIE_DOMAIN and IDENTITY_COOKIE_DOMAINS: Domain attributes `_dfid` may carry (one per site). */
  readonly cookieDomains: readonly string[];
  /**
   * IDENTITY_RATE_LIMIT_RPS: requests per second per pipeline, on each of token, redirect and resolve
   * (default 100). Bounds the single-use ids resolve pins in the cache: at most this × (token TTL + skew)
   * per pipeline, ~12 500 by default.
   */
  readonly rateLimitRps: number;
  /**
   * IDENTITY_RATE_LIMIT_PER_IP_RPS: requests per second per client address (an IPv6 address counts by its
   * /64), on each of token, redirect and resolve (default 20), checked before any other work.
   */
  readonly ipRateLimitRps: number;
  /** TRUSTED_PROXY_HOPS (the gateway's): proxies whose X-Forwarded-For entry names the client (default 0). */
  readonly trustedProxyHops: number;
  /** TRUSTED_PROXY_CIDRS (the gateway's): those proxies' addresses; empty: hops are counted, not checked. */
  readonly trustedProxyCidrs: readonly string[];
}

/** Defaults of the hub's rate limits (IDENTITY_RATE_LIMIT_RPS, IDENTITY_RATE_LIMIT_PER_IP_RPS). */
export const DEFAULT_RATE_LIMIT_RPS = 100;
export const DEFAULT_IP_RATE_LIMIT_RPS = 20;
const MAX_RPS = 10_000_000;

const hostList = z.array(z.string().refine(isHostName, 'must be a host name such as data.shop.example'));

export const identityHubSettingsSchema = z.strictObject({
  namespace: z.string(),
  tokenTtlSeconds: z.int().min(5).max(MAX_TOKEN_TTL_SECONDS).default(MAX_TOKEN_TTL_SECONDS),
  clockSkewSeconds: z.int().min(0).max(30).default(5),
  publicHosts: hostList.default([]),
  cookieDomains: hostList.default([]),
  rateLimitRps: z.int().min(1).max(MAX_RPS).default(DEFAULT_RATE_LIMIT_RPS),
  ipRateLimitRps: z.int().min(1).max(MAX_RPS).default(DEFAULT_IP_RATE_LIMIT_RPS),
  trustedProxyHops: z.int().min(0).max(10).default(0),
  trustedProxyCidrs: z
    .array(
      z.string().refine((entry) => ipOrCidrItem(entry) === undefined, 'must be an IP address or CIDR range'),
    )
    .max(1000)
    .default([]),
});

export type IdentityHubSettingsInput = z.input<typeof identityHubSettingsSchema>;

/** Validates settings given in code (the all-in-one, tests). */
export function identityHubSettings(input: IdentityHubSettingsInput): IdentityHubSettings {
  const parsed = identityHubSettingsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '(root)';
    throw new IdentityHubError(
      'invalid_config',
      `identity hub settings: ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return Object.freeze({
    ...parsed.data,
    publicHosts: Object.freeze([...new Set(parsed.data.publicHosts)]),
    cookieDomains: Object.freeze([...new Set(parsed.data.cookieDomains)]),
  });
}

/**
 * Settings for the hub from the shared configuration (IDENTITY_* variables, SIGNAL_NAMESPACE, COOKIE_DOMAIN
 * and TRUSTED_PROXY_HOPS, already validated by @signal/config, which names the variable in any error).
 */
export function loadIdentityHubSettings(
  config: Pick<SignalConfig, 'namespace' | 'identity'> & {
    readonly gateway: Pick<
      SignalConfig['gateway'],
      'cookieDomain' | 'trustedProxyHops' | 'trustedProxyCidrs'
    >;
  },
): IdentityHubSettings {
  const cookieDomains = [...config.identity.cookieDomains];
  const shared = config.gateway.cookieDomain?.replace(/^\./, '').toLowerCase();
  if (shared !== undefined && shared !== '') cookieDomains.unshift(shared);
  return identityHubSettings({
    namespace: config.namespace,
    tokenTtlSeconds: config.identity.tokenTtlSeconds,
    clockSkewSeconds: config.identity.clockSkewSeconds,
    publicHosts: [...config.identity.publicHosts],
    cookieDomains,
    rateLimitRps: config.identity.rateLimitRps,
    ipRateLimitRps: config.identity.ipRateLimitRps,
    trustedProxyHops: config.gateway.trustedProxyHops,
    trustedProxyCidrs: [...config.gateway.trustedProxyCidrs],
  });
}
