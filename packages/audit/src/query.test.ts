import { describe, expect, it } from 'vitest';
import { AuditError } from './errors';
import { decodeCursor, encodeCursor, parseFilters, parsePageOptions } from './query';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuditError) return err.code;
    throw err;
  }
  return undefined;
}

describe('cursor', () => {
  it('round-trips a seq through an opaque base64url token', () => {
    for (const seq of [1, 42, 9_007_199_254_740_991]) {
      const cursor = encodeCursor(seq);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(cursor).not.toContain(String(seq));
      expect(decodeCursor(cursor)).toBe(seq);
    }
  });

  it('refuses cursors it did not issue', () => {
    const forged = [
      '',
      '42',
      Buffer.from('audit:v1:0').toString('base64url'),
      Buffer.from('audit:v1:-1').toString('base64url'),
      Buffer.from('audit:v1:99999999999999999').toString('base64url'),
      Buffer.from('audit:v2:5').toString('base64url'),
      `${encodeCursor(5)}=`,
      encodeCursor(5).replace(/.$/, '!'),
    ];
    for (const cursor of forged)
      expect(
        code(() => decodeCursor(cursor)),
        cursor,
      ).toBe('audit.invalid_cursor');
  });
});

describe('list options', () => {
  it('defaults the limit to 50 and refuses anything outside 1..100', () => {
    expect(parsePageOptions({})).toEqual({ limit: 50, cursor: undefined });
    expect(parsePageOptions({ limit: '100' }).limit).toBe(100);
    for (const limit of [0, 101, -1, 2.5, 'ten']) {
      expect(
        code(() => parsePageOptions({ limit })),
        String(limit),
      ).toBe('audit.invalid_query');
    }
  });

  it('accepts ISO timestamps with offsets and refuses unknown filters', () => {
    const parsed = parseFilters({ from: '2026-01-01T00:00:00+02:00', to: new Date('2026-01-02T00:00:00Z') });
    expect(parsed.from?.toISOString()).toBe('2025-12-31T22:00:00.000Z');
    expect(code(() => parseFilters({ from: 'yesterday' }))).toBe('audit.invalid_query');
    expect(code(() => parseFilters({ sql: '1=1' } as never))).toBe('audit.invalid_query');
  });
});
