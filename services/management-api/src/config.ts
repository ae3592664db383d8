import type { SignalConfig } from '@signal/config';

/** The Management API's slice of the configuration, checked once at construction. */
export interface ManagementApiSettings {
  /** HS256 key (`JWT_SECRET`, at least 32 bytes). */
  readonly jwtSecret: Uint8Array;
  /** `ACCESS_TOKEN_TTL` seconds (900). */
  readonly accessTokenTtlSeconds: number;
  /** `REFRESH_TOKEN_TTL` seconds (604800). */
  readonly refreshTokenTtlSeconds: number;
  /** `SESSION_MAX_AGE` seconds (2592000): a login's absolute lifetime. */
  readonly sessionMaxAgeSeconds: number;
}

export const MIN_JWT_SECRET_BYTES = 32;

/** A setting the Management API cannot start without. The message says what to set. */
export class ManagementApiConfigError extends Error {
  override readonly name = 'ManagementApiConfigError';
  readonly code = 'invalid_config';
}

export function managementApiSettings(config: Pick<SignalConfig, 'management'>): ManagementApiSettings {
  const secret = config.management.jwtSecret?.reveal();
  if (secret === undefined) {
    throw new ManagementApiConfigError(
      'JWT_SECRET must be set to at least 32 bytes to run the Management API (generate one with `openssl rand -hex 32`)',
    );
  }
  const jwtSecret = Buffer.from(secret, 'utf8');
  if (jwtSecret.byteLength < MIN_JWT_SECRET_BYTES) {
    throw new ManagementApiConfigError(
      `JWT_SECRET must be at least ${MIN_JWT_SECRET_BYTES} bytes (got ${jwtSecret.byteLength})`,
    );
  }
  const { accessTokenTtlSeconds, refreshTokenTtlSeconds, sessionMaxAgeSeconds } = config.management;
  if (!Number.isSafeInteger(accessTokenTtlSeconds) || accessTokenTtlSeconds < 1) {
    throw new ManagementApiConfigError('ACCESS_TOKEN_TTL must be a positive number of seconds');
  }
  if (!Number.isSafeInteger(refreshTokenTtlSeconds) || refreshTokenTtlSeconds <= accessTokenTtlSeconds) {
    throw new ManagementApiConfigError(
      'REFRESH_TOKEN_TTL must be a number of seconds longer than ACCESS_TOKEN_TTL',
    );
  }
  if (!Number.isSafeInteger(sessionMaxAgeSeconds) || sessionMaxAgeSeconds <= accessTokenTtlSeconds) {
    throw new ManagementApiConfigError(
      'SESSION_MAX_AGE must be a number of seconds longer than ACCESS_TOKEN_TTL',
    );
  }
  return Object.freeze({ jwtSecret, accessTokenTtlSeconds, refreshTokenTtlSeconds, sessionMaxAgeSeconds });
}
