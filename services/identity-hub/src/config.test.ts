import { loadConfig } from '@signal/config';
import { describe, expect, it } from 'vitest';
import { identityHubSettings, loadIdentityHubSettings } from './config';

const load = (env: Record<string, string>) =>
  loadIdentityHubSettings(loadConfig({ env, cwd: '/nonexistent' }));

describe('loadIdentityHubSettings', () => {
  it('defaults to 120 s tokens, 5 s skew, any Host, host-only cookies', () => {
    expect(load({})).toEqual({
      namespace: 'signal',
      tokenTtlSeconds: 120,
      clockSkewSeconds: 5,
      publicHosts: [],
      cookieDomains: [],
      rateLimitRps: 100,
      ipRateLimitRps: 20,
      trustedProxyHops: 0,
      trustedProxyCidrs: [],
    });
  });

  it('reads the rate limits (IDENTITY_RATE_LIMIT_RPS, IDENTITY_RATE_LIMIT_PER_IP_RPS) and TRUSTED_PROXY_HOPS', () => {
    expect(
      load({
        IDENTITY_RATE_LIMIT_RPS: '250',
        IDENTITY_RATE_LIMIT_PER_IP_RPS: ' 5 ',
        TRUSTED_PROXY_HOPS: '2',
        TRUSTED_PROXY_CIDRS: '10.0.0.0/8,2001:db8::/32',
      }),
    ).toMatchObject({
      rateLimitRps: 250,
      ipRateLimitRps: 5,
      trustedProxyHops: 2,
      trustedProxyCidrs: ['10.0.0.0/8', '2001:db8::/32'],
    });
  });

  it('reads the hub variables and adds COOKIE_DOMAIN to the cookie domains', () => {
    const settings = load({
      SIGNAL_NAMESPACE: 'acme',
      COOKIE_DOMAIN: '.Shop.example',
      IDENTITY_TOKEN_TTL: '30',
      IDENTITY_CLOCK_SKEW: '2',
      IDENTITY_PUBLIC_HOSTS: 'data.shop.example, data.other.example',
      IDENTITY_COOKIE_DOMAINS: 'other.example',
    });
    expect(settings).toMatchObject({
      namespace: 'acme',
      tokenTtlSeconds: 30,
      clockSkewSeconds: 2,
      publicHosts: ['data.shop.example', 'data.other.example'],
      cookieDomains: ['shop.example', 'other.example'],
    });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it.each([
    [
      { IDENTITY_TOKEN_TTL: '121' },
      'IDENTITY_TOKEN_TTL must be a whole number from 5 to 120 seconds (got "121")',
    ],
    [
      { IDENTITY_TOKEN_TTL: '2m' },
      'IDENTITY_TOKEN_TTL must be a whole number from 5 to 120 seconds (got "2m")',
    ],
    [{ IDENTITY_CLOCK_SKEW: '-1' }, 'IDENTITY_CLOCK_SKEW must be a whole number from 0 to 30 seconds'],
    [
      { IDENTITY_PUBLIC_HOSTS: 'https://data.shop.example' },
      'IDENTITY_PUBLIC_HOSTS must be a comma-separated list of host names',
    ],
    [
      { IDENTITY_COOKIE_DOMAINS: '*.shop.example' },
      'IDENTITY_COOKIE_DOMAINS must be a comma-separated list of host names',
    ],
    [
      { IDENTITY_RATE_LIMIT_RPS: '0' },
      'IDENTITY_RATE_LIMIT_RPS must be a whole number from 1 to 10000000 (got "0")',
    ],
    [
      { IDENTITY_RATE_LIMIT_PER_IP_RPS: '1.5' },
      'IDENTITY_RATE_LIMIT_PER_IP_RPS must be a whole number from 1 to 10000000 (got "1.5")',
    ],
  ])('refuses %o naming the variable', (env, message) => {
    expect(() => load(env)).toThrow(message);
  });

  it('validates settings given in code the same way', () => {
    expect(() => identityHubSettings({ namespace: 'x', tokenTtlSeconds: 600 })).toThrow(/tokenTtlSeconds/);
    expect(() => identityHubSettings({ namespace: 'x', publicHosts: ['Bad Host'] })).toThrow(/publicHosts/);
    expect(() => identityHubSettings({ namespace: 'x', ipRateLimitRps: 0 })).toThrow(/ipRateLimitRps/);
  });
});
