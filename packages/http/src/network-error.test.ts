import { describe, expect, it } from 'vitest';
import { classifyNetworkError } from './network-error';

const coded = (code: string, message = code, cause?: unknown): Error =>
  Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code });

describe('classifyNetworkError', () => {
  it.each([
    ['CERT_HAS_EXPIRED', 'tls_error', false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls_error', false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls_error', false],
    ['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'tls_error', false],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls_error', false],
    ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout', true],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', true],
    ['UND_ERR_BODY_TIMEOUT', 'timeout', true],
    ['ECONNREFUSED', 'connect_refused', true],
    ['ENOTFOUND', 'dns', true],
    ['EAI_AGAIN', 'dns', true],
    ['ECONNRESET', 'connection_reset', true],
    ['UND_ERR_SOCKET', 'connection_reset', true],
    ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'response_too_large', false],
    ['HPE_INVALID_CONSTANT', 'protocol_error', true],
    ['UND_ERR_ABORTED', 'aborted', true],
    ['UND_ERR_INVALID_ARG', 'invalid_request', false],
  ] as const)('%s is %s (retryable: %s)', (code, kind, retryable) => {
    expect(classifyNetworkError(coded(code))).toMatchObject({ kind, code, retryable });
  });

  it('names the timeout phase', () => {
    expect(classifyNetworkError(coded('UND_ERR_CONNECT_TIMEOUT')).phase).toBe('connect');
    expect(classifyNetworkError(coded('UND_ERR_HEADERS_TIMEOUT')).phase).toBe('headers');
    expect(classifyNetworkError(coded('UND_ERR_BODY_TIMEOUT')).phase).toBe('body');
  });

  it('finds a TLS code behind a generic socket error', () => {
    const error = coded(
      'UND_ERR_SOCKET',
      'other side closed',
      coded('CERT_HAS_EXPIRED', 'certificate has expired'),
    );
    expect(classifyNetworkError(error)).toMatchObject({
      kind: 'tls_error',
      code: 'CERT_HAS_EXPIRED',
      message: 'certificate has expired',
    });
  });

  it('looks inside AggregateError (happy-eyeballs connection attempts)', () => {
    const error = new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'all attempts failed');
    expect(classifyNetworkError(error)).toMatchObject({ kind: 'connect_refused', code: 'ECONNREFUSED' });
  });

  it('treats an AbortError as aborted and anything unrecognised as unknown but retryable', () => {
    expect(classifyNetworkError(new DOMException('stop', 'AbortError'))).toMatchObject({ kind: 'aborted' });
    expect(classifyNetworkError(new Error('weird'))).toEqual({
      kind: 'unknown',
      code: 'UNKNOWN',
      message: 'weird',
      retryable: true,
    });
    expect(classifyNetworkError('a string')).toMatchObject({ kind: 'unknown', message: 'a string' });
  });

  it('survives cause cycles and bounds long messages', () => {
    const a = coded('EWHATEVER', 'x'.repeat(1000));
    const b = coded('ALSO_UNKNOWN', 'b', a);
    Object.assign(a, { cause: b });
    const classified = classifyNetworkError(a);
    expect(classified.kind).toBe('unknown');
    expect(classified.message.length).toBeLessThanOrEqual(301);
  });
});
