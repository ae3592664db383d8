import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryOutcome, VendorAdapterId } from '../src/index';
import { NOW, now, purchases } from './fixtures';
import { recordingLogger } from './helpers';
import { ALL_SECRETS, CREDENTIALS, integrationFor, successBody, VENDOR_IDS } from './integrations';
import {
  createTlsHarness,
  type Reply,
  type Responder,
  type TlsHarness,
  type VendorSink,
} from './vendor-sink';

/**
 * How each vendor's answer becomes one outcome per event: status tables shared by every vendor, then each
 * vendor's own codes and per-row reports. All against a real HTTPS server.
 */

let tls: TlsHarness;
let sink: VendorSink;

beforeAll(async () => {
  tls = await createTlsHarness();
  sink = await tls.startSink();
});
afterAll(() => tls.close());

type Expect =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'dead_letter'; reason: string };

/** Sends `count` purchases answered by `reply` and returns the outcomes without message ids and extras. */
async function classify(
  vendor: VendorAdapterId,
  reply: Reply,
  count = 1,
  settings: Record<string, unknown> = {},
): Promise<DeliveryOutcome[]> {
  sink.reply(() => reply);
  const integration = integrationFor(vendor, sink.origin, settings);
  const count_ = vendor === 'webhook' ? 1 : count;
  const report = await integration.deliver(purchases(count_), {
    transport: { dispatcher: tls.dispatcher },
    now,
  });
  return [...report.outcomes];
}

function shape(outcome: DeliveryOutcome | undefined): Expect | undefined {
  if (outcome === undefined || outcome.kind === 'delivered') return outcome && { kind: 'delivered' };
  if (outcome.kind === 'retry') {
    return {
      kind: 'retry',
      reason: outcome.reason,
      ...(outcome.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.retryAfterMs }),
    };
  }
  return { kind: outcome.kind === 'dropped' ? 'dead_letter' : outcome.kind, reason: outcome.reason };
}

/** What a plain 400 (no vendor code in the body) means for each vendor. */
const PLAIN_400: Record<VendorAdapterId, string> = {
  meta: 'vendor_rejected',
  ga4: 'vendor_rejected',
  google_ads: 'vendor_rejected',
  tiktok: 'vendor_rejected',
  pinterest: 'validation_failed',
  snapchat: 'validation_failed',
  linkedin: 'validation_failed',
  webhook: 'vendor_rejected',
};

describe.each(VENDOR_IDS)('%s: HTTP status table', (vendor) => {
  const rows: Array<[string, Reply, Expect]> = [
    ['200', { status: 200, body: successBody(vendor) }, { kind: 'delivered' }],
    [
      '400',
      { status: 400, body: { message: 'bad request' } },
      { kind: 'dead_letter', reason: PLAIN_400[vendor] },
    ],
    [
      '401',
      { status: 401, body: { message: 'unauthorized' } },
      { kind: 'dead_letter', reason: 'auth_failed' },
    ],
    ['403', { status: 403, body: { message: 'forbidden' } }, { kind: 'dead_letter', reason: 'auth_failed' }],
    [
      '429 Retry-After seconds',
      { status: 429, headers: { 'retry-after': '7' } },
      { kind: 'retry', reason: 'rate_limited', retryAfterMs: 7000 },
    ],
    [
      '429 Retry-After HTTP-date',
      { status: 429, headers: { 'retry-after': new Date(NOW + 120_000).toUTCString() } },
      { kind: 'retry', reason: 'rate_limited', retryAfterMs: 120_000 },
    ],
    ['500', { status: 500, body: 'oops' }, { kind: 'retry', reason: 'vendor_unavailable' }],
    [
      '502',
      { status: 502, body: '<html>bad gateway</html>' },
      { kind: 'retry', reason: 'vendor_unavailable' },
    ],
    [
      '503 Retry-After',
      { status: 503, headers: { 'retry-after': '30' } },
      { kind: 'retry', reason: 'vendor_unavailable', retryAfterMs: 30_000 },
    ],
    [
      '301',
      { status: 301, headers: { location: 'https://example.com/' } },
      { kind: 'dead_letter', reason: 'unexpected_redirect' },
    ],
  ];

  it.each(rows)('%s', async (_, reply, expected) => {
    const outcomes = await classify(vendor, reply, 2);
    for (const outcome of outcomes) expect(shape(outcome)).toEqual(expected);
  });
});

describe('network failures (every vendor, concurrently)', () => {
  it('a timeout is retried', async () => {
    sink.reply(() => 'hang');
    const reports = await Promise.all(
      VENDOR_IDS.map((vendor) =>
        integrationFor(vendor, sink.origin).deliver(purchases(1), {
          transport: { dispatcher: tls.dispatcher },
          now,
          timeoutMs: 250,
        }),
      ),
    );
    for (const report of reports) {
      expect(report.outcomes[0]).toMatchObject({
        kind: 'retry',
        reason: 'timeout',
        lastResponse: { errorCode: 'UND_ERR_HEADERS_TIMEOUT' },
      });
    }
  });

  it('a refused connection is retried', async () => {
    const port = await tls.closedPort();
    const reports = await Promise.all(
      VENDOR_IDS.map((vendor) =>
        integrationFor(vendor, `https://127.0.0.1:${port}`).deliver(purchases(1), {
          transport: { dispatcher: tls.dispatcher },
          now,
        }),
      ),
    );
    for (const report of reports) {
      expect(report.outcomes[0]).toMatchObject({
        kind: 'retry',
        reason: 'network_error',
        lastResponse: { errorCode: 'ECONNREFUSED' },
      });
    }
  });
});

describe('a vendor certificate the strict TLS client does not trust', () => {
  it('is dead-lettered as tls_error before any byte of the event is sent', async () => {
    const rogue = await tls.startUntrustedSink();
    const report = await integrationFor('meta', rogue.origin).deliver(purchases(1), {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(report.outcomes[0]).toMatchObject({ kind: 'dead_letter', reason: 'tls_error' });
    expect(rogue.requests).toHaveLength(0);
  });
});

describe('Meta Graph error codes', () => {
  const graph = (status: number, code: number, subcode?: number): Reply => ({
    status,
    body: { error: { message: 'x', type: 'OAuthException', code, error_subcode: subcode, fbtrace_id: 't' } },
  });
  it.each<[string, Reply, Expect]>([
    ['4 application request limit', graph(400, 4), { kind: 'retry', reason: 'rate_limited' }],
    ['17 user request limit', graph(400, 17), { kind: 'retry', reason: 'rate_limited' }],
    ['80003 ad-account limit', graph(400, 80003), { kind: 'retry', reason: 'rate_limited' }],
    ['613 rate limit', graph(400, 613), { kind: 'retry', reason: 'rate_limited' }],
    ['1 unknown error', graph(500, 1), { kind: 'retry', reason: 'vendor_unavailable' }],
    ['2 service unavailable', graph(500, 2), { kind: 'retry', reason: 'vendor_unavailable' }],
    ['341 application limit', graph(500, 341), { kind: 'retry', reason: 'vendor_unavailable' }],
    ['368 temporarily blocked', graph(400, 368), { kind: 'retry', reason: 'vendor_unavailable' }],
    ['190 invalid token', graph(400, 190, 460), { kind: 'dead_letter', reason: 'auth_failed' }],
    ['200 permission', graph(403, 200), { kind: 'dead_letter', reason: 'auth_failed' }],
    ['100/2804003 too old', graph(400, 100, 2804003), { kind: 'dead_letter', reason: 'validation_failed' }],
    ['100/33 object missing', graph(400, 100, 33), { kind: 'dead_letter', reason: 'validation_failed' }],
  ])('%s', async (_, reply, expected) => {
    const outcomes = await classify('meta', reply, 3);
    for (const outcome of outcomes) expect(shape(outcome)).toEqual(expected);
  });

  it('names the Graph code in the detail', async () => {
    const [outcome] = await classify('meta', graph(400, 100, 2804003));
    expect(outcome).toMatchObject({ detail: 'Graph error 100/2804003' });
  });
});

describe('TikTok body codes (HTTP 200)', () => {
  it.each<[number, Expect]>([
    [0, { kind: 'delivered' }],
    [20001, { kind: 'delivered' }],
    [40100, { kind: 'retry', reason: 'rate_limited' }],
    [40700, { kind: 'retry', reason: 'vendor_unavailable' }],
    [50002, { kind: 'retry', reason: 'vendor_unavailable' }],
    [40001, { kind: 'dead_letter', reason: 'auth_failed' }],
    [40105, { kind: 'dead_letter', reason: 'auth_failed' }],
    [40002, { kind: 'dead_letter', reason: 'validation_failed' }],
    [41234, { kind: 'dead_letter', reason: 'vendor_rejected' }],
  ])('code %i', async (code, expected) => {
    const outcomes = await classify(
      'tiktok',
      { status: 200, body: { code, message: 'm', request_id: 'r' } },
      2,
    );
    for (const outcome of outcomes) expect(shape(outcome)).toEqual(expected);
  });
});

describe('per-event results', () => {
  it('Pinterest: a failed row is dead-lettered, the processed rows are delivered', async () => {
    const outcomes = await classify(
      'pinterest',
      {
        status: 200,
        body: {
          num_events_received: 3,
          num_events_processed: 2,
          events: [
            { status: 'processed' },
            { status: 'failed', error_message: 'em is not a valid hash for someone@example.com' },
            { status: 'processed', warning_message: 'non-standard field' },
          ],
        },
      },
      3,
    );
    expect(outcomes.map(shape)).toEqual([
      { kind: 'delivered' },
      { kind: 'dead_letter', reason: 'validation_failed' },
      { kind: 'delivered' },
    ]);
    // The vendor's message is kept as detail, with the e-mail address it quoted removed.
    expect(outcomes[1]).toMatchObject({ detail: 'em is not a valid hash for [email]' });
  });

  it('Google Ads: partialFailureError rows by index, transient row errors retried', async () => {
    const failure = (index: number, code: Record<string, string>) => ({
      errorCode: code,
      message: 'row failed',
      location: { fieldPathElements: [{ fieldName: 'conversions', index }, { fieldName: 'gclid' }] },
    });
    const outcomes = await classify(
      'google_ads',
      {
        status: 200,
        body: {
          results: [{}, {}, {}],
          partialFailureError: {
            code: 3,
            message: 'partial failure',
            details: [
              {
                '@type': 'type.googleapis.com/google.ads.googleads.v25.errors.GoogleAdsFailure',
                errors: [
                  failure(1, { conversionUploadError: 'UNPARSEABLE_GCLID' }),
                  failure(2, { conversionUploadError: 'TOO_RECENT_CONVERSION_ACTION' }),
                ],
              },
            ],
          },
        },
      },
      3,
    );
    expect(outcomes.map(shape)).toEqual([
      { kind: 'delivered' },
      { kind: 'dead_letter', reason: 'validation_failed' },
      { kind: 'retry', reason: 'vendor_transient' },
    ]);
    expect(outcomes[1]).toMatchObject({ detail: 'conversionUploadError: UNPARSEABLE_GCLID' });
  });

  it('Google Ads: RESOURCE_EXHAUSTED honours the RetryInfo delay; UNAUTHENTICATED is an auth failure', async () => {
    const exhausted = await classify('google_ads', {
      status: 429,
      body: {
        error: {
          code: 429,
          status: 'RESOURCE_EXHAUSTED',
          details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '45s' }],
        },
      },
    });
    expect(shape(exhausted[0])).toEqual({ kind: 'retry', reason: 'rate_limited', retryAfterMs: 45_000 });
    const unauthenticated = await classify('google_ads', {
      status: 401,
      body: {
        error: { code: 401, status: 'UNAUTHENTICATED', message: 'Request had invalid authentication' },
      },
    });
    expect(shape(unauthenticated[0])).toEqual({ kind: 'dead_letter', reason: 'auth_failed' });
    const invalid = await classify('google_ads', {
      status: 400,
      body: {
        error: {
          code: 400,
          status: 'INVALID_ARGUMENT',
          details: [{ errors: [{ errorCode: { fieldError: 'REQUIRED' }, message: 'required' }] }],
        },
      },
    });
    expect(invalid[0]).toMatchObject({
      kind: 'dead_letter',
      reason: 'validation_failed',
      detail: 'fieldError: REQUIRED',
    });
  });

  it('LinkedIn: 422 names the bad rows; the others go again at once in a follow-up, not as a retry', async () => {
    sink.reply((_, index) =>
      index === 0
        ? {
            status: 422,
            body: { message: 'Index: 1, ERROR :: /conversionValue/amount :: not a number\n', status: 422 },
          }
        : { status: 200, body: { elements: [{ status: 201 }, { status: 201 }] } },
    );
    const report = await integrationFor('linkedin', sink.origin).deliver(purchases(3), {
      transport: { dispatcher: tls.dispatcher },
      now,
    });
    expect(report.outcomes.map(shape)).toEqual([
      { kind: 'delivered' },
      { kind: 'dead_letter', reason: 'validation_failed' },
      { kind: 'delivered' },
    ]);
    expect(report.requests.map((r) => r.events)).toEqual([3, 2]);
  });

  it('LinkedIn: per-element statuses of a batch create; 426 means the pinned version was sunset', async () => {
    const outcomes = await classify(
      'linkedin',
      { status: 200, body: { elements: [{ status: 201 }, { status: 400 }, { status: 503 }] } },
      3,
    );
    expect(outcomes.map(shape)).toEqual([
      { kind: 'delivered' },
      { kind: 'dead_letter', reason: 'validation_failed' },
      { kind: 'retry', reason: 'vendor_unavailable' },
    ]);
    const sunset = await classify('linkedin', {
      status: 426,
      body: { message: 'Requested version is deprecated' },
    });
    expect(shape(sunset[0])).toEqual({ kind: 'dead_letter', reason: 'api_version_deprecated' });
  });

  it('Snap: a 200 whose status is INVALID is a validation failure', async () => {
    const outcomes = await classify('snapchat', {
      status: 200,
      body: { status: 'INVALID', reason: 'bad pixel' },
    });
    expect(shape(outcomes[0])).toEqual({ kind: 'dead_letter', reason: 'validation_failed' });
  });

  it('GA4: the production endpoint answers 2xx whatever it thinks, so 2xx is delivered', async () => {
    const outcomes = await classify('ga4', {
      status: 200,
      body: { validationMessages: [{ validationCode: 'X' }] },
    });
    expect(shape(outcomes[0])).toEqual({ kind: 'delivered' });
  });
});

describe('captured error texts never carry credentials or PII', () => {
  /** A careless vendor: echoes the URL, every header and the body it received, and quotes the token. */
  const echo =
    (secret: string | undefined): Responder =>
    (request) => ({
      status: 400,
      body: JSON.stringify({
        error: {
          url: request.url,
          headers: request.headers,
          message: `token ${secret} rejected for John.Smith@Gmail.com from 203.0.113.7`,
          received: request.body,
        },
      }),
    });

  it.each(VENDOR_IDS)('%s', async (vendor) => {
    const secrets = Object.values(CREDENTIALS[vendor]).filter((v): v is string => typeof v === 'string');
    sink.reply(echo(secrets[0]));
    const logger = recordingLogger();
    const report = await integrationFor(vendor, sink.origin).deliver(purchases(2), {
      transport: { dispatcher: tls.dispatcher },
      now,
      logger,
    });

    const captured = JSON.stringify(report);
    const logged = JSON.stringify(logger.lines);
    expect(report.outcomes.every((o) => o.kind === 'dead_letter')).toBe(true);
    for (const secret of ALL_SECRETS) {
      expect(captured).not.toContain(secret.slice(0, 10));
      expect(logged).not.toContain(secret.slice(0, 10));
    }
    expect(captured).not.toContain('John.Smith@Gmail.com');
    expect(captured).not.toContain('203.0.113.7');
    for (const outcome of report.outcomes) {
      if (outcome.kind !== 'dead_letter') continue;
      expect(outcome.lastResponse?.status).toBe(400);
      expect(outcome.lastResponse?.body).toContain('[redacted]');
      expect(outcome.lastResponse?.body?.length).toBeLessThanOrEqual(1024);
    }
  });
});
