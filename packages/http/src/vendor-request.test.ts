import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { request, retryAfterMs } from './vendor-request';

describe('retryAfterMs', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delta-seconds and HTTP dates', () => {
    expect(retryAfterMs('7', now)).toBe(7_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
  });
  it('never returns a negative wait and ignores nonsense', () => {
    expect(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-5', now)).toBeUndefined();
  });
});

describe('request', () => {
  it('refuses plain-text and invalid URLs before connecting', async () => {
    const dispatcher = new Agent();
    expect(await request(dispatcher, { url: 'http://127.0.0.1:9/' })).toEqual({
      type: 'network_error',
      ok: false,
      error: {
        kind: 'invalid_request',
        code: 'ERR_INSECURE_URL',
        message: 'vendor requests must use https',
        retryable: false,
      },
    });
    expect(await request(dispatcher, { url: 'not a url' })).toMatchObject({
      type: 'network_error',
      error: { kind: 'invalid_request', code: 'ERR_INVALID_URL' },
    });
    await dispatcher.close();
  });

  it('refuses a deadline that is not a positive number of milliseconds, before connecting', async () => {
    const dispatcher = new Agent();
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(await request(dispatcher, { url: 'https://127.0.0.1:9/', timeoutMs })).toMatchObject({
        type: 'network_error',
        error: { kind: 'invalid_request', code: 'ERR_INVALID_ARG_VALUE', retryable: false },
      });
    }
    await dispatcher.close();
  });
});
