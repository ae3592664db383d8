import { describe, expect, it } from 'vitest';
import { KmsError } from './provider';
import { safeDetail } from './providers/provider-errors';
import { canonicalWrapContext, checkWrapContext } from './wrap-context';

describe('canonicalWrapContext', () => {
  it('gives the same bytes whatever order the context was built in', () => {
    const a = canonicalWrapContext({ purpose: 'signal-dek', data_class: 'identity', dek_id: 'd1' });
    const b = canonicalWrapContext({ dek_id: 'd1', purpose: 'signal-dek', data_class: 'identity' });
    expect(a.equals(b)).toBe(true);
    expect(a.toString('utf8')).toBe('{"data_class":"identity","dek_id":"d1","purpose":"signal-dek"}');
  });

  it('tells contexts apart that differ in one value', () => {
    const a = canonicalWrapContext({ purpose: 'signal-dek', data_class: 'identity' });
    const b = canonicalWrapContext({ purpose: 'signal-dek', data_class: 'tokens' });
    expect(a.equals(b)).toBe(false);
  });
});

describe('checkWrapContext', () => {
  const refuse = (context: Record<string, string>) => {
    try {
      checkWrapContext('aws-kms', context);
      return null;
    } catch (error) {
      return error instanceof KmsError ? error.code : 'not a KmsError';
    }
  };

  it('accepts short printable-ASCII contexts', () => {
    expect(refuse({ purpose: 'signal-dek', data_class: 'identity' })).toBeNull();
  });

  it('refuses empty, oversized and non-ASCII contexts before any provider call', () => {
    expect(refuse({})).toBe('kms_misconfigured');
    expect(refuse({ purpose: 'x'.repeat(257) })).toBe('kms_misconfigured');
    expect(refuse({ purpose: 'café' })).toBe('kms_misconfigured');
    expect(refuse({ purpose: 'a\nb' })).toBe('kms_misconfigured');
    expect(refuse({ '': 'x' })).toBe('kms_misconfigured');
    expect(refuse(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])))).toBe(
      'kms_misconfigured',
    );
  });
});

describe('safeDetail', () => {
  it('elides long base64 or hex runs (wrapped keys, tokens) and caps the length', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(safeDetail(`invalid ciphertext ${key} for hvs.CAESIabcdefghijklmnop`)).toBe(
      'invalid ciphertext […] for […]',
    );
    expect(safeDetail('x '.repeat(200)).length).toBeLessThanOrEqual(160);
    expect(safeDetail(undefined)).toBe('');
  });
});
