import { describe, expect, it } from 'vitest';
import { parseInstant, parseOptions, parseWholeNumber, UsageError } from './options';
import { progressLine } from './progress';

describe('parseOptions', () => {
  const spec = { valued: ['integration', 'since'], flags: ['follow'] };

  it('reads --name value, --name=value, flags and positionals', () => {
    const parsed = parseOptions(
      ['replay', '--integration', 'int_1', '--since=2026-01-01T00:00:00Z', '--follow'],
      spec,
    );
    expect(parsed.positionals).toEqual(['replay']);
    expect(Object.fromEntries(parsed.values)).toEqual({
      integration: 'int_1',
      since: '2026-01-01T00:00:00Z',
    });
    expect([...parsed.flags]).toEqual(['follow']);
  });

  it('refuses unknown options, missing values, repeated options and values given to flags', () => {
    for (const args of [
      ['--integraton', 'x'],
      ['--integration'],
      ['--integration', '--follow'],
      ['--integration', 'a', '--integration', 'b'],
      ['--follow=yes'],
    ]) {
      expect(() => parseOptions(args, spec), args.join(' ')).toThrow(UsageError);
    }
  });
});

describe('parseInstant and parseWholeNumber', () => {
  it('takes ISO 8601 date-times with a time zone only', () => {
    expect(parseInstant('since', '2026-04-06T14:30:00Z')?.toISOString()).toBe('2026-04-06T14:30:00.000Z');
    expect(parseInstant('since', '2026-04-06T16:30:00.5+02:00')?.toISOString()).toBe(
      '2026-04-06T14:30:00.500Z',
    );
    expect(parseInstant('since', undefined)).toBeUndefined();
    for (const bad of ['2026-04-06', '2026-04-06T14:30:00', 'yesterday', '2026-13-01T00:00:00Z']) {
      expect(() => parseInstant('since', bad), bad).toThrow(/--since must be an ISO 8601 date-time/);
    }
  });

  it('takes whole numbers within the range', () => {
    expect(parseWholeNumber('limit', '50', { min: 1, max: 100 })).toBe(50);
    for (const bad of ['0', '101', '1.5', '-1', 'ten', '']) {
      expect(() => parseWholeNumber('limit', bad, { min: 1, max: 100 }), bad).toThrow(UsageError);
    }
  });
});

describe('progressLine', () => {
  it('draws a 30-character bar with the percentage, counts and rate', () => {
    expect(progressLine({ total: 200, done: 50, failed: 1 }, 1234.4)).toBe(
      '[########......................]  25.0%  50/200 records, 1 failed, 1234 records/s',
    );
    expect(progressLine({ total: 0, done: 0, failed: 0 }, null)).toBe(
      `[${'#'.repeat(30)}] 100.0%  0/0 records, 0 failed`,
    );
  });
});
