import { describe, expect, it } from 'vitest';
import { checkEventTime, checkIp } from './guards';

describe('checkIp', () => {
  it.each([
    ['203.0.113.7', { ok: true, ip: '203.0.113.7' }],
    [' 2001:db8::1 ', { ok: true, ip: '2001:db8::1' }],
    [undefined, { ok: true, ip: undefined }],
    ['203.0.113.7:443', { ok: false, reason: 'ip_with_port' }],
    ['[2001:db8::1]:8443', { ok: false, reason: 'ip_with_port' }],
    ['999.1.1.1:80', { ok: false, reason: 'invalid_ip' }],
    ['localhost', { ok: false, reason: 'invalid_ip' }],
    ['203.0.113.7, 10.0.0.1', { ok: false, reason: 'invalid_ip' }],
  ])('%s', (ip, expected) => {
    expect(checkIp(ip)).toEqual(expected);
  });
});

describe('checkEventTime', () => {
  const now = Date.parse('2026-11-20T12:00:00Z');
  const limits = { maxEventAgeMs: 7 * 86_400_000, maxFutureSkewMs: 600_000 };
  const at = (timestamp: string, receivedAt = timestamp) =>
    checkEventTime({ timestamp, receivedAt }, limits, now);

  it('accepts the window inclusive of its edge', () => {
    expect(at('2026-11-13T12:00:00Z')).toEqual({ ok: true, ms: Date.parse('2026-11-13T12:00:00Z') });
    expect(at('2026-11-20T12:10:00Z')).toMatchObject({ ok: true });
  });

  it('refuses older and later events with their reason', () => {
    expect(at('2026-11-13T11:59:59Z')).toMatchObject({ ok: false, reason: 'event_too_old' });
    expect(at('2026-11-20T12:10:01Z')).toMatchObject({ ok: false, reason: 'event_in_future' });
    expect(at('not a date')).toMatchObject({ ok: false, reason: 'invalid_timestamp' });
  });

  it('clamps a fast client clock to when the gateway received the event', () => {
    expect(at('2026-11-21T00:00:00Z', '2026-11-20T11:59:00Z')).toEqual({
      ok: true,
      ms: Date.parse('2026-11-20T11:59:00Z'),
    });
  });
});
