import type { SignalConfig } from '@signal/config';
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
}

const hostList = z.array(z.string().refine(isHostName, 'must be a host name such as data.shop.example'));

export const identityHubSettingsSchema = z.strictObject({
  namespace: z.string(),
  tokenTtlSeconds: z.int().min(5).max(MAX_TOKEN_TTL_SECONDS).default(MAX_TOKEN_TTL_SECONDS),
  clockSkewSeconds: z.int().min(0).max(30).default(5),
  publicHosts: hostList.default([]),
  cookieDomains: hostList.default([]),
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
 * Settings for the hub from the shared configuration (IDENTITY_* variables, SIGNAL_NAMESPACE and
 * COOKIE_DOMAIN, already validated by @signal/config, which names the variable in any error).
 */
export function loadIdentityHubSettings(
  config: Pick<SignalConfig, 'namespace' | 'identity'> & {
    readonly gateway: Pick<SignalConfig['gateway'], 'cookieDomain'>;
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
  });
}
