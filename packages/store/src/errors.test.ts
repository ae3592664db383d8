import { describe, expect, it } from 'vitest';
import { toStoreError } from './errors';

/** Shaped like the errors pg and PGlite raise (both put SQLSTATE in `code`). */
function serverError(code: string, message: string, extra: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { code, severity: 'ERROR', ...extra });
}

describe('toStoreError', () => {
  it('keeps integrity-error messages (identifiers only) and drops DETAIL with the values', () => {
    const err = toStoreError(
      serverError('23505', 'duplicate key value violates unique constraint "users_email_key"', {
        constraint: 'users_email_key',
        detail: 'Key (email)=(bob@example.com) already exists.',
      }),
      'query',
    );
    expect(err.code).toBe('conflict');
    expect(err.constraint).toBe('users_email_key');
    expect(err.message).toContain('users_email_key');
    expect(JSON.stringify(err)).not.toContain('bob@example.com');
    expect(err.cause).toBeUndefined();
  });

  it('replaces data-exception and user-raised messages, which echo values, by the SQLSTATE', () => {
    const data = toStoreError(
      serverError('22P02', 'invalid input syntax for type integer: "4111-1111"'),
      'query',
    );
    expect(data.message).toBe('statement failed (SQLSTATE 22P02)');
    const raised = toStoreError(serverError('P0001', 'token abc123 rejected'), 'query');
    expect(raised.message).not.toContain('abc123');
  });

  it.each([
    ['40001', 'serialization_failure', true],
    ['40P01', 'serialization_failure', true],
    ['57014', 'timeout', true],
    ['55P03', 'timeout', true],
    ['57P01', 'unavailable', true],
    ['08006', 'unavailable', true],
    ['53300', 'unavailable', true],
    ['23P01', 'conflict', false],
    ['23503', 'query_failed', false],
    ['42P01', 'query_failed', false],
  ])('maps SQLSTATE %s to %s (retryable %s)', (sqlState, code, retryable) => {
    const err = toStoreError(serverError(sqlState, 'x'), 'query');
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
    expect(err.sqlState).toBe(sqlState);
  });

  it('maps socket errors, including dual-stack AggregateErrors, to retryable unavailable', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(toStoreError(refused, 'connect').code).toBe('unavailable');
    const aggregate = new AggregateError([refused, refused], '');
    expect(toStoreError(aggregate, 'connect')).toMatchObject({ code: 'unavailable', retryable: true });
    expect(toStoreError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'query').code).toBe(
      'unavailable',
    );
  });

  it('maps certificate failures and a server without TLS to tls_failed', () => {
    const selfSigned = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    expect(toStoreError(selfSigned, 'connect').code).toBe('tls_failed');
    expect(toStoreError(new Error('The server does not support SSL connections'), 'connect').code).toBe(
      'tls_failed',
    );
  });

  it('maps pool exhaustion to timeout and unknown failures to query_failed', () => {
    expect(toStoreError(new Error('timeout exceeded when trying to connect'), 'query').code).toBe('timeout');
    expect(toStoreError('weird', 'query').code).toBe('query_failed');
  });
});
