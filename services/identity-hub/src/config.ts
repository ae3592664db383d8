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

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Settings for a standalone hub: SIGNAL_NAMESPACE and COOKIE_DOMAIN from the shared configuration, the
 * hub's own variables from the environment. A bad value fails start-up naming the variable.
 */
export function loadIdentityHubSettings(
  config: Pick<SignalConfig, 'namespace'> & {
    readonly gateway: Pick<SignalConfig['gateway'], 'cookieDomain'>;
  },
  env: Env = process.env,
): IdentityHubSettings {
  const cookieDomains = list(env, 'IDENTITY_COOKIE_DOMAINS');
  const shared = config.gateway.cookieDomain?.replace(/^\./, '').toLowerCase();
  if (shared !== undefined && shared !== '') cookieDomains.unshift(shared);
  return identityHubSettings({
    namespace: config.namespace,
    tokenTtlSeconds: seconds(env, 'IDENTITY_TOKEN_TTL', 5, MAX_TOKEN_TTL_SECONDS) ?? MAX_TOKEN_TTL_SECONDS,
    clockSkewSeconds: seconds(env, 'IDENTITY_CLOCK_SKEW', 0, 30) ?? 5,
    publicHosts: checkedHosts('IDENTITY_PUBLIC_HOSTS', list(env, 'IDENTITY_PUBLIC_HOSTS')),
    cookieDomains: checkedHosts('IDENTITY_COOKIE_DOMAINS', cookieDomains),
  });
}

function seconds(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const value = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new IdentityHubError(
      'invalid_config',
      `${name} must be a whole number of seconds from ${min} to ${max} (got ${JSON.stringify(raw.slice(0, 20))})`,
    );
  }
  return value;
}

function list(env: Env, name: string): string[] {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return [];
  return raw.split(',').map((item) => item.trim().toLowerCase());
}

function checkedHosts(name: string, hosts: string[]): string[] {
  for (const host of hosts) {
    if (!isHostName(host)) {
      throw new IdentityHubError(
        'invalid_config',
        `${name} must be a comma-separated list of host names such as data.shop.example (got ${JSON.stringify(host.slice(0, 64))})`,
      );
    }
  }
  return hosts;
}
