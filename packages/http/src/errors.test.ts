import { describe, expect, it } from 'vitest';
import { HTTP_ERROR_CODES, HttpError, httpStatusFor, isRetryableHttpError } from './errors';

describe('HTTP error model', () => {
  it('maps every code to a client (4xx) or server (5xx) status, consistently with HttpError', () => {
    const statuses = Object.fromEntries(HTTP_ERROR_CODES.map((code) => [code, httpStatusFor(code)]));
    expect(statuses).toEqual({
      bad_request: 400,
      invalid_json: 400,
      invalid_encoding: 400,
      nesting_too_deep: 400,
      forbidden_key: 400,
      validation_failed: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      method_not_allowed: 405,
      conflict: 409,
      payload_too_large: 413,
      unsupported_media_type: 415,
      rate_limited: 429,
      internal: 500,
      unavailable: 503,
    });
    for (const code of HTTP_ERROR_CODES) expect(new HttpError(code, 'm').status).toBe(httpStatusFor(code));
  });

  it('marks only throttling and server-side failures as retryable', () => {
    const retryable = HTTP_ERROR_CODES.filter(isRetryableHttpError);
    expect(retryable).toEqual(['rate_limited', 'internal', 'unavailable']);
  });

  it('carries headers and keeps the cause off the client-facing message', () => {
    const cause = new Error('connection string postgres://user:secret@db');
    const error = new HttpError('rate_limited', 'slow down', { headers: { 'retry-after': '3' }, cause });
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryable: true, message: 'slow down' });
    expect(error.headers).toEqual({ 'retry-after': '3' });
    expect(error.cause).toBe(cause);
  });
});
