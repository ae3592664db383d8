import { z } from 'zod';

/**
 * Server-side TLS policy, in one place so every service terminates TLS the same way.
 *
 * TLS 1.3 suites are all AEAD and are listed in the order we prefer. For TLS 1.2 only forward-secret ECDHE
 * key exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305) is offered: no CBC (Lucky13/padding-oracle
 * class), no static RSA key exchange (no forward secrecy), no SHA-1 MACs. This is Mozilla's "intermediate"
 * profile minus the finite-field DHE suites.
 */
export const TLS13_CIPHER_SUITES = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
] as const;

export const TLS12_CIPHER_SUITES = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
] as const;

/** The value for Node's `ciphers` option (it takes TLS 1.3 and TLS 1.2 names in one list). */
export const SERVER_CIPHERS = [...TLS13_CIPHER_SUITES, ...TLS12_CIPHER_SUITES].join(':');

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

export const DEFAULT_TLS_MIN_VERSION: TlsMinVersion = 'TLSv1.2';

/**
 * Parses a configured minimum TLS version (`TLS_MIN_VERSION`): `1.2` (default) or `1.3`, also accepted in
 * Node's spelling (`TLSv1.2`). Anything older is refused: TLS 1.0/1.1 are deprecated (RFC 8996).
 */
export const TlsMinVersionSchema = z
  .enum(['1.2', '1.3', 'TLSv1.2', 'TLSv1.3'], {
    error: 'TLS_MIN_VERSION must be 1.2 or 1.3 (TLS 1.0 and 1.1 are not supported)',
  })
  .transform((value): TlsMinVersion => (value === '1.3' || value === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2'));
