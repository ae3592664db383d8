import { type CanonicalEvent, canonicalEventSchema } from '@signal/events';
import type { VendorRequest, VendorRequestResult } from '@signal/http';
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { VendorAdapter } from './adapter';
import { classifyStatus, shared } from './classify-http';
import { createIntegration, deliver, type SendRequest } from './deliver';
import { VendorConfigError } from './errors';
import { bisect, deadLetter, resend } from './outcome';
import { metaCapi } from './vendors/meta-capi.adapter';

/**
 * The delivery pipeline around an adapter, with a test adapter and transport typed against the ports: what
 * happens when mapping, sending or classifying goes wrong for part of a batch.
 */

const NOW = Date.parse('2026-11-20T12:00:00Z');

function event(messageId: string, properties: Record<string, unknown> = {}): CanonicalEvent {
  return canonicalEventSchema.parse({
    type: 'track',
    event: 'purchase',
    messageId,
    anonymousId: 'a-1',
    properties,
    traits: {},
    context: { consent: {}, provenance: 'hmac' },
    timestamp: '2026-11-20T11:59:00Z',
    receivedAt: '2026-11-20T11:59:00Z',
    org: 'org',
    pipelineId: 'pl',
  });
}

const testAdapter: VendorAdapter<{ batch: number }, { token: string }> = {
  id: 'webhook',
  displayName: 'test',
  settingsSchema: z.strictObject({ batch: z.int().min(1).default(2) }),
  credentialsSchema: z.strictObject({ token: z.string().min(8) }),
  piiProfile: () => 'meta',
  limits: (s) => ({
    maxBatchSize: s.batch,
    maxBodyBytes: 1 << 20,
    maxEventBytes: 1024,
    maxEventAgeMs: 86_400_000,
    maxFutureSkewMs: 60_000,
  }),
  prepare(e) {
    if (e.properties.explode === true) throw new Error(`cannot map ${JSON.stringify(e.properties)}`);
    if (e.properties.skip === true)
      return { ok: false, kind: 'dropped', reason: 'unmapped_event', detail: 'skip' };
    return { ok: true, payload: { id: e.messageId, pad: e.properties.pad } };
  },
  buildRequest(batch, { credentials }) {
    return {
      url: 'https://vendor.test/events',
      logUrl: 'https://vendor.test/events',
      method: 'POST',
      headers: { authorization: `Bearer ${credentials.token}` },
      body: JSON.stringify(batch.map((b) => b.payload)),
    };
  },
  classify(result, batch, { now }) {
    if (result.type === 'network_error')
      return shared({ kind: 'retry', reason: 'network_error' }, batch.length);
    // A buggy classifier: one verdict too few for a 418, and a 409 that blames no row but leaves them all unjudged.
    if (result.status === 418) return [];
    if (result.status === 409) return shared(resend, batch.length);
    // Like TikTok's 40002: the whole request refused for a row the vendor does not name.
    if (result.status === 422) return shared(bisect(deadLetter('validation_failed')), batch.length);
    return shared(classifyStatus(result, now), batch.length);
  },
};

function recorder(answer: (req: VendorRequest) => VendorRequestResult | Promise<VendorRequestResult>) {
  const sent: VendorRequest[] = [];
  const send: SendRequest = async (req) => {
    sent.push(req);
    return answer(req);
  };
  return { sent, send };
}

const ok = (status = 200): VendorRequestResult => ({
  type: 'response',
  ok: status < 300,
  status,
  headers: {},
  body: '',
});

describe('createIntegration', () => {
  it('refuses bad settings and credentials with codes and paths, never the values', () => {
    const attempt = (settings: unknown, credentials: unknown) => () =>
      createIntegration(metaCapi, { settings, credentials });
    expect(attempt({ pixelId: 'abc' }, { accessToken: 'x'.repeat(20) })).toThrow(
      expect.objectContaining({ code: 'vendor.invalid_settings' }),
    );
    let error: unknown;
    try {
      attempt({ pixelId: '123' }, { accessToken: 'secret value' })();
    } catch (cause) {
      error = cause;
    }
    expect(error).toBeInstanceOf(VendorConfigError);
    expect((error as VendorConfigError).code).toBe('vendor.invalid_credentials');
    expect((error as VendorConfigError).issues.join()).toMatch(/^accessToken: /);
    expect((error as Error).message).not.toContain('secret value');
  });

  it('refuses an endpoint override that is not https', () => {
    expect(() =>
      createIntegration(metaCapi, {
        settings: { pixelId: '1', endpoint: 'http://127.0.0.1:9/x' },
        credentials: { accessToken: 'x'.repeat(20) },
      }),
    ).toThrow(/https/);
  });
});

describe('deliver', () => {
  it('isolates an event whose mapping throws; the rest of the batch is sent, outcomes keep input order', async () => {
    const { sent, send } = recorder(() => ok());
    const report = await deliver(
      testAdapter,
      [
        event('m1'),
        event('boom', { explode: true }),
        event('m2'),
        event('skip', { skip: true }),
        event('m3'),
      ],
      { settings: {}, credentials: { token: 'token-123456' }, transport: { send }, now: () => NOW },
    );
    expect(report.outcomes.map((o) => [o.messageId, o.kind])).toEqual([
      ['m1', 'delivered'],
      ['boom', 'dead_letter'],
      ['m2', 'delivered'],
      ['skip', 'dropped'],
      ['m3', 'delivered'],
    ]);
    expect(report.outcomes[1]).toEqual({ kind: 'dead_letter', messageId: 'boom', reason: 'mapping_failed' });
    expect(sent.map((r) => JSON.parse(String(r.body)).map((p: { id: string }) => p.id))).toEqual([
      ['m1', 'm2'],
      ['m3'],
    ]);
  });

  it('turns a transport that throws into a retry, and a classifier with the wrong count into the status table', async () => {
    const throwing = recorder(() => {
      throw new Error('socket exploded');
    });
    const integration = createIntegration(testAdapter, {
      settings: {},
      credentials: { token: 'token-123456' },
    });
    const failed = await integration.deliver([event('m1')], {
      transport: { send: throwing.send },
      now: () => NOW,
    });
    expect(failed.outcomes[0]).toMatchObject({
      kind: 'retry',
      reason: 'network_error',
      lastResponse: { errorCode: 'TRANSPORT_THREW' },
    });

    const teapot = recorder(() => ok(418));
    const classified = await integration.deliver([event('m1'), event('m2')], {
      transport: { send: teapot.send },
      now: () => NOW,
    });
    expect(classified.outcomes.map((o) => (o.kind === 'delivered' ? o.kind : o.reason))).toEqual([
      'vendor_rejected',
      'vendor_rejected',
    ]);
  });

  it('a classifier that leaves every row unjudged gets the status table, not an endless follow-up', async () => {
    const { sent, send } = recorder(() => ok(409));
    const report = await deliver(testAdapter, [event('m1'), event('m2')], {
      settings: {},
      credentials: { token: 'token-123456' },
      transport: { send },
      now: () => NOW,
    });
    expect(sent).toHaveLength(1);
    expect(report.outcomes.map((o) => o.kind === 'dead_letter' && o.reason)).toEqual([
      'vendor_rejected',
      'vendor_rejected',
    ]);
  });

  it('stops splitting a refused batch when shutdown aborts a follow-up: the rest keeps its event', async () => {
    const controller = new AbortController();
    const { sent, send } = recorder((): VendorRequestResult => {
      if (sent.length === 1) {
        controller.abort();
        return ok(422);
      }
      return {
        type: 'network_error',
        ok: false,
        error: { kind: 'aborted', code: 'UND_ERR_ABORTED', message: 'aborted', retryable: true },
      };
    });
    const report = await deliver(testAdapter, [event('m1'), event('m2'), event('m3'), event('m4')], {
      settings: { batch: 4 },
      credentials: { token: 'token-123456' },
      transport: { send },
      now: () => NOW,
      signal: controller.signal,
    });
    expect(sent).toHaveLength(2);
    for (const outcome of report.outcomes) {
      expect(outcome).toMatchObject({ kind: 'retry', reason: 'network_error' });
    }
  });

  it('refuses an event bigger than the per-event limit without sending it', async () => {
    const { sent, send } = recorder(() => ok());
    const report = await deliver(testAdapter, [event('big', { pad: 'p'.repeat(2000) }), event('small')], {
      settings: {},
      credentials: { token: 'token-123456' },
      transport: { send },
      now: () => NOW,
    });
    expect(report.outcomes[0]).toMatchObject({ kind: 'dead_letter', reason: 'payload_too_large' });
    expect(sent).toHaveLength(1);
  });

  it('passes the timeout and abort signal to the transport, and reports each request', async () => {
    const { sent, send } = recorder(() => ok(204));
    const controller = new AbortController();
    const report = await deliver(testAdapter, [event('m1'), event('m2'), event('m3')], {
      settings: { batch: 2 },
      credentials: { token: 'token-123456' },
      transport: { send },
      now: () => NOW,
      timeoutMs: 1500,
      signal: controller.signal,
    });
    // timeoutMs is the deadline for the whole exchange, not only the header and body idle timeouts.
    expect(sent[0]).toMatchObject({
      timeoutMs: 1500,
      headersTimeoutMs: 1500,
      bodyTimeoutMs: 1500,
      signal: controller.signal,
    });
    expect(report.requests.map((r) => [r.events, r.status])).toEqual([
      [2, 204],
      [1, 204],
    ]);
  });

  it('gives up on a vendor that answers too slowly at timeoutMs, through the dispatcher transport', async () => {
    const agent = new MockAgent({ connections: 1 });
    agent.disableNetConnect();
    // The answer would arrive after 5 s; the deadline is 300 ms.
    agent
      .get('https://vendor.test')
      .intercept({ path: '/events', method: 'POST' })
      .reply(200, '{}')
      .delay(5_000);
    const started = performance.now();
    const report = await deliver(testAdapter, [event('m1')], {
      settings: {},
      credentials: { token: 'token-123456' },
      transport: { dispatcher: agent },
      now: () => NOW,
      timeoutMs: 300,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    // The test adapter classifies every network error as `network_error`; real adapters give `timeout`.
    expect(report.outcomes).toEqual([expect.objectContaining({ kind: 'retry', messageId: 'm1' })]);
    expect(report.requests).toEqual([
      expect.objectContaining({ events: 1, errorCode: 'UND_ERR_HEADERS_TIMEOUT' }),
    ]);
    await agent.close();
  });
});
