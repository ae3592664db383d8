import { describe, expect, it } from 'vitest';
import { PiiConfigError } from '../errors';
import { parsePiiRules } from './config';

function issuesOf(raw: unknown): readonly string[] {
  try {
    parsePiiRules(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(PiiConfigError);
    expect((error as PiiConfigError).code).toBe('pii.invalid_config');
    return (error as PiiConfigError).issues;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('parsePiiRules', () => {
  it('fills defaults: enabled, sha256, no fields', () => {
    expect(parsePiiRules({})).toEqual({
      enabled: true,
      hash_fields: [],
      redact_fields: [],
      hash_algorithm: 'sha256',
    });
    expect(parsePiiRules(undefined).enabled).toBe(true);
  });

  it('accepts bare paths as shorthand and normalises both lists to objects', () => {
    expect(
      parsePiiRules({
        hash_fields: [' traits.email ', { field: 'traits.mobile', type: 'phone' }],
        redact_fields: ['properties.card', { field: 'traits.phone', mode: 'partial' }],
      }),
    ).toMatchObject({
      hash_fields: [{ field: 'traits.email' }, { field: 'traits.mobile', type: 'phone' }],
      redact_fields: [
        { field: 'properties.card', mode: 'full' },
        { field: 'traits.phone', mode: 'partial' },
      ],
    });
  });

  it('names the setting at fault and what it must be', () => {
    expect(issuesOf({ hash_algorithm: 'md5' })).toEqual([
      'pii_rules.hash_algorithm: one of sha256, hmac-sha256',
    ]);
    expect(issuesOf({ redact_fields: [{ field: 'a.b', mode: 'blur' }] })).toEqual([
      'pii_rules.redact_fields[0].mode: one of full, partial, hash, null',
    ]);
    expect(issuesOf({ hash_fields: [{ field: 'a.b', type: 'ssn' }] })[0]).toMatch(
      /^pii_rules\.hash_fields\[0\]\.type: one of email, phone, /,
    );
    expect(issuesOf({ hash_fields: ['traits..email'] })[0]).toMatch(
      /hash_fields\[0\]\.field: .*empty segment/,
    );
    expect(issuesOf({ hash_fields: [''] })[0]).toMatch(/empty string/);
    expect(issuesOf({ hash_fields: ['*.*'] })[0]).toMatch(/wildcards only/);
    expect(issuesOf({ hash_fields: ['a.*.*.*.*.*'] })[0]).toMatch(/at most 4 "\*" wildcards/);
    expect(issuesOf({ hash_fields: [Array.from({ length: 17 }, () => 'a').join('.')] })[0]).toMatch(
      /16 segments/,
    );
    expect(issuesOf({ hash_fields: ['traits.email'], extra: true })[0]).toMatch(/^pii_rules: .*extra/);
  });

  it('refuses a field listed twice, across both lists', () => {
    expect(issuesOf({ hash_fields: ['traits.email'], redact_fields: ['traits.email'] })).toEqual([
      'pii_rules.redact_fields[0]: "traits.email" is already listed in hash_fields[0]: list each field once, in hash_fields or redact_fields',
    ]);
  });

  it('never echoes field values: messages only carry paths and allowed values', () => {
    const issues = issuesOf({ hash_fields: [{ field: 'traits.email', type: 'john@example.com' }] });
    expect(issues.join(' ')).not.toContain('john@example.com');
  });
});
