import { Secret } from '@signal/config';
import { describe, expect, it } from 'vitest';
import { ManagementApiConfigError, managementApiSettings } from './config';

const management = (
  jwtSecret: string | null,
  access = 900,
  refresh = 604_800,
  sessionMaxAge = 2_592_000,
) => ({
  management: {
    jwtSecret: jwtSecret === null ? null : new Secret(jwtSecret),
    accessTokenTtlSeconds: access,
    refreshTokenTtlSeconds: refresh,
    sessionMaxAgeSeconds: sessionMaxAge,
    operatorOrg: 'demo',
  },
});

describe('Management API settings', () => {
  it('refuses to start without a JWT_SECRET of at least 32 bytes, naming the variable', () => {
    expect(() => managementApiSettings(management(null))).toThrow(ManagementApiConfigError);
    expect(() => managementApiSettings(management(null))).toThrow(/JWT_SECRET must be set/);
    expect(() => managementApiSettings(management('x'.repeat(31)))).toThrow(/at least 32 bytes \(got 31\)/);
  });

  it('never puts the secret in the error', () => {
    try {
      managementApiSettings(management('short-secret-value'));
    } catch (error) {
      expect(String(error)).not.toContain('short-secret-value');
    }
  });

  it('checks the token lifetimes', () => {
    expect(() => managementApiSettings(management('k'.repeat(32), 0))).toThrow(/ACCESS_TOKEN_TTL/);
    expect(() => managementApiSettings(management('k'.repeat(32), 900, 900))).toThrow(/REFRESH_TOKEN_TTL/);
    expect(() => managementApiSettings(management('k'.repeat(32), 900, 604_800, 600))).toThrow(
      /SESSION_MAX_AGE must be a number of seconds longer than ACCESS_TOKEN_TTL/,
    );
    const settings = managementApiSettings(management('k'.repeat(32)));
    expect(settings.jwtSecret.byteLength).toBe(32);
    expect(settings.accessTokenTtlSeconds).toBe(900);
  });
});
