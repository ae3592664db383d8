import { getCiphers } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { SERVER_CIPHERS, TLS12_CIPHER_SUITES, TLS13_CIPHER_SUITES, TlsMinVersionSchema } from './tls-policy';

describe('TLS policy', () => {
  it('offers only forward-secret AEAD suites for TLS 1.2', () => {
    for (const suite of TLS12_CIPHER_SUITES) {
      expect(suite).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    }
  });

  it('names only suites this OpenSSL knows (a typo would silently drop a suite)', () => {
    const known = new Set(getCiphers());
    for (const suite of [...TLS13_CIPHER_SUITES, ...TLS12_CIPHER_SUITES]) {
      expect(known.has(suite.toLowerCase())).toBe(true);
    }
    expect(SERVER_CIPHERS.split(':')).toHaveLength(TLS13_CIPHER_SUITES.length + TLS12_CIPHER_SUITES.length);
  });

  it('parses TLS_MIN_VERSION values and refuses anything below 1.2', () => {
    expect(TlsMinVersionSchema.parse('1.2')).toBe('TLSv1.2');
    expect(TlsMinVersionSchema.parse('1.3')).toBe('TLSv1.3');
    expect(TlsMinVersionSchema.parse('TLSv1.3')).toBe('TLSv1.3');
    for (const bad of ['1.1', '1.0', 'TLSv1.1', '', '1.4']) {
      const result = TlsMinVersionSchema.safeParse(bad);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toBe(
        'TLS_MIN_VERSION must be 1.2 or 1.3 (TLS 1.0 and 1.1 are not supported)',
      );
    }
  });
});
