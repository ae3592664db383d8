import { dlqMessageSchema } from '@signal/events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { captureResponse, createRedactor, MAX_CAPTURED_BODY, secretStrings } from './redact';

/** What a dead letter built from a captured answer must satisfy (else its batch is redelivered forever). */
const lastResponseSchema = dlqMessageSchema.shape.lastResponse;

const TOKEN = 'EAAB+secret/token=42';

describe('createRedactor', () => {
  const redact = createRedactor([TOKEN, 'short']);

  it('removes a credential as sent, URL-encoded and JSON-escaped', () => {
    expect(redact(`raw ${TOKEN} end`)).toBe('raw [redacted] end');
    expect(redact(`url ?x=${encodeURIComponent(TOKEN)}&y=1`)).not.toContain(encodeURIComponent(TOKEN));
    expect(redact(JSON.stringify({ t: TOKEN }))).not.toContain('secret/token');
  });

  it('removes token-looking parameters and bearer values it was not told about', () => {
    expect(redact('GET /x?access_token=abc123def456&a=1')).toBe('GET /x?access_token=[redacted]&a=1');
    expect(redact('{"api_secret": "zzz-999"}')).toBe('{"api_secret": "[redacted]"}');
    expect(redact('Authorization: Bearer eyJhbGciOi.x.y')).toBe('Authorization: Bearer [redacted]');
  });

  it('removes e-mail and IP addresses a vendor quotes back', () => {
    expect(redact('bad em for Jane.Doe+x@example.co.uk at 198.51.100.23:8443')).toBe(
      'bad em for [email] at [ip]',
    );
    expect(redact('client 2001:db8:85a3::8a2e:370:7334 refused')).toBe('client [ip] refused');
    expect(redact('from ::ffff:203.0.113.7 and ::1')).toBe('from ::ffff:[ip] and [ip]');
    // LinkedIn's row messages use `::` as a separator: it is no one's address.
    expect(redact('ERROR :: /conversionValue/amount :: not a number')).toBe(
      'ERROR :: /conversionValue/amount :: not a number',
    );
  });

  it('ignores secrets too short to search for without blanking unrelated text', () => {
    expect(redact('a short story')).toBe('a short story');
  });

  it('scrubs before truncating: a secret straddling the cut leaves no prefix behind', () => {
    const body = `${'x'.repeat(MAX_CAPTURED_BODY - 8)}${TOKEN}${'y'.repeat(100)}`;
    const captured = captureResponse({ type: 'response', ok: false, status: 400, headers: {}, body }, redact);
    expect(captured.body?.length).toBeLessThanOrEqual(MAX_CAPTURED_BODY);
    expect(captured.body).not.toContain(TOKEN.slice(0, 5));
  });

  it('never lets a credential through, wherever it sits in the text (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 8, maxLength: 40, unit: fc.constantFrom(...'abcdefXYZ0123456789-_.~+/=') }),
        fc.string({ maxLength: 2000 }),
        fc.string({ maxLength: 2000 }),
        (secret, before, after) => {
          const text = `${before}${secret}${after}`;
          const captured = captureResponse(
            { type: 'response', ok: false, status: 500, headers: {}, body: text },
            createRedactor([secret]),
          );
          expect(captured.body ?? '').not.toContain(secret);
        },
      ),
    );
  });

  it('keeps only the network error code of a failed request', () => {
    const captured = captureResponse(
      {
        type: 'network_error',
        ok: false,
        error: {
          kind: 'connect_refused',
          code: 'ECONNREFUSED',
          message: `connect to ${TOKEN}`,
          retryable: true,
        },
      },
      redact,
    );
    expect(captured).toEqual({ errorCode: 'ECONNREFUSED' });
  });

  it('keeps a status outside 100-599 (LinkedIn/WAF 999) as an error code, never as the status', () => {
    const captured = captureResponse(
      { type: 'response', ok: false, status: 999, headers: {}, body: 'Request denied' },
      redact,
    );
    expect(captured).toEqual({ errorCode: 'http_status_999', body: 'Request denied' });
    expect(lastResponseSchema.safeParse(captured).success).toBe(true);
  });

  it('always fits the dead-letter schema, whatever the status, body or error code (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -1000, max: 100_000 }), fc.constantFrom(0, 99, 100, 599, 600, 999)),
        fc.string({ maxLength: 6000 }),
        fc.string({ minLength: 1, maxLength: 300 }),
        (status, body, code) => {
          const response = captureResponse(
            { type: 'response', ok: false, status, headers: {}, body },
            redact,
          );
          expect(lastResponseSchema.safeParse(response).success).toBe(true);
          const failure = captureResponse(
            {
              type: 'network_error',
              ok: false,
              error: { kind: 'connect_refused', code, message: 'x', retryable: true },
            },
            redact,
          );
          expect(lastResponseSchema.safeParse(failure).success).toBe(true);
        },
      ),
    );
  });
});

describe('secretStrings', () => {
  it('collects every string of a credentials object, nested ones included', () => {
    expect(secretStrings({ a: 'one', b: { c: 'two', d: ['three', 4] }, e: true })).toEqual([
      'one',
      'two',
      'three',
    ]);
  });
});
