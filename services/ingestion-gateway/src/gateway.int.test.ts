import { randomBytes } from 'node:crypto';
import { request as rawRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Bus,
  busMigrations,
  createPostgresBus,
  DEAD_LETTER_RESERVE_BYTES,
  type OutgoingMessage,
} from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { canonicalEventSchema, topics } from '@signal/events';
import { createRouter, createServer, type SignalHttpServer } from '@signal/http';
import { buildSdk } from '@signal/sdk';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signBody } from './auth/hmac';
import { createGateway, type GatewayConfig } from './gateway';
import {
  cachedPipelineDirectory,
  type PipelineAuth,
  type PipelineDirectory,
} from './pipelines/pipeline-directory';

const NAMESPACE = `gw${randomBytes(3).toString('hex')}`;
const KEY = `dk_test_${'a1B2c3D4e5F6g7H8'.repeat(2)}`;
const SERVER_KEY = `dk_live_${'Z9y8X7w6V5u4T3s2'.repeat(2)}`;
const DISABLED_KEY = `dk_live_${'disabledDisabled'.repeat(2)}`;
const SECRET = randomBytes(32);
const OLD_SECRET = randomBytes(32);
const ORIGIN = 'https://shop.example.com';

const browserPipeline: PipelineAuth = {
  orgId: 'org_demo',
  pipelineId: 'pl_web',
  type: 'web',
  enabled: true,
  keyStatus: 'active',
  allowedDomains: ['example.com'],
  rateLimitRps: null,
  hmacSecrets: [],
};
const serverPipeline: PipelineAuth = {
  ...browserPipeline,
  pipelineId: 'pl_server',
  type: 'server',
  allowedDomains: [],
  hmacSecrets: [SECRET, OLD_SECRET],
};

/** The directory port, typed: in production the control plane implements it. */
const directory: PipelineDirectory = {
  async findPipelineByKey(key) {
    if (key === KEY) return browserPipeline;
    if (key === SERVER_KEY) return serverPipeline;
    if (key === DISABLED_KEY) return { ...browserPipeline, enabled: false };
    return null;
  },
};

/** The real bus, with every accepted publish recorded so a test can say "nothing reached the bus". */
function recording(bus: Bus) {
  const published: OutgoingMessage[] = [];
  let failing: false | 'before' | 'after' = false;
  let gate: { entered: () => void; opened: Promise<void> } | undefined;
  return {
    published,
    /**
     * Holds the next publish until `open` is called; `entered` settles once a publish is waiting there.
     */
    hold() {
      let open!: () => void;
      let entered!: () => void;
      const waiting = new Promise<void>((resolve) => {
        entered = resolve;
      });
      gate = {
        entered,
        opened: new Promise<void>((resolve) => {
          open = resolve;
        }),
      };
      return { entered: waiting, open };
    },
    /** `after`: the write is stored, then reported as failed (a COMMIT whose outcome was lost). */
    fail(on: boolean | 'after') {
      failing = on === true ? 'before' : on;
    },
    get maxMessageBytes() {
      return bus.maxMessageBytes;
    },
    async publish(topic: string, messages: readonly OutgoingMessage[]) {
      const held = gate;
      if (held !== undefined) {
        gate = undefined;
        held.entered();
        await held.opened;
      }
      if (failing === 'before') throw new Error('bus down');
      const receipt = await bus.publish(topic, messages);
      published.push(...messages);
      if (failing === 'after') throw new Error('commit outcome unknown');
      return receipt;
    },
  };
}

let db: Database;
let bus: Bus;
let recorder: ReturnType<typeof recording>;
/** The gateway's cache (replay claims, rate limits). */
const gatewayCache = createMemoryCache({ namespace: NAMESPACE });
let server: SignalHttpServer;
let base: string;
const config: GatewayConfig = {
  namespace: NAMESPACE,
  cookieDomain: '.example.com',
  corsOrigins: [],
  maxBatchSize: 5,
  maxPayloadSize: 16 * 1024,
  rateLimitRps: 1000,
  trustedProxyHops: 0,
};

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, busMigrations);
  bus = createPostgresBus({
    db,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
  });
  recorder = recording(bus);
  const sdk = await buildSdk();
  const gateway = createGateway({
    config,
    directory,
    bus: recorder,
    cache: gatewayCache,
    sdk,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    metrics: createMetrics({ processMetrics: false }),
  });
  const router = createRouter();
  gateway.register(router);
  server = createServer({ handler: (req, res) => router.handle(req, res) });
  const address: AddressInfo = await server.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await server?.close(1000);
  await bus?.close();
  await db?.close();
});

beforeEach(() => {
  recorder.published.length = 0;
  recorder.fail(false);
});

function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'content-type': 'application/json', origin: ORIGIN, 'x-pipeline-key': KEY, ...headers },
  });
}

function signed(body: string, opts: { secret?: Buffer; timestamp?: number } = {}) {
  const timestamp = String(opts.timestamp ?? Date.now());
  return {
    'content-type': 'application/json',
    'x-pipeline-key': SERVER_KEY,
    'x-timestamp': timestamp,
    'x-signature': `sha256=${signBody(opts.secret ?? SECRET, timestamp, Buffer.from(body))}`,
  };
}

const track = {
  event: 'purchase',
  properties: { value: 42, currency: 'EUR' },
  context: { page: { url: 'https://shop.example.com/?gclid=G1&fbclid=F1' } },
};

describe('browser collection endpoints', () => {
  it('accepts a track call with 202 only after a durable publish, and sets the first-party cookie', async () => {
    const res = await post('/v1/t', JSON.stringify(track), { 'sec-gpc': '1' });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; messageIds: string[] };
    expect(body.accepted).toBe(1);
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(
      /^_dfid=[0-9a-f-]{36}; Max-Age=34560000; Path=\/; Domain=\.example\.com; HttpOnly; Secure; SameSite=Lax$/,
    );
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');

    const [message] = recorder.published;
    const event = canonicalEventSchema.parse(JSON.parse(message?.value ?? '{}'));
    expect(event).toMatchObject({
      type: 'track',
      event: 'purchase',
      org: 'org_demo',
      pipelineId: 'pl_web',
      messageId: body.messageIds[0],
      context: {
        provenance: 'pipeline_key',
        consent: { gpc: true },
        clickIds: { gclid: 'G1', fbclid: 'F1' },
      },
    });
    expect(event.context.clickIds?.fbc).toMatch(/^fb\.1\.\d+\.F1$/);
    expect(event.anonymousId).toBe(/^_dfid=([^;]+)/.exec(cookie)?.[1]);
    expect(message?.key).toBe(event.anonymousId);
  });

  it('the accepted event is on the bus for a consumer (durable, keyed by visitor)', async () => {
    const res = await post(
      '/v1/p',
      JSON.stringify({ context: { page: { url: 'https://shop.example.com/a' } } }),
    );
    const { messageIds } = (await res.json()) as { messageIds: string[] };
    const seen: string[] = [];
    const sub = await bus.subscribe({
      groupId: `${NAMESPACE}-reader-${randomBytes(3).toString('hex')}`,
      topics: [topics.rawEvents(NAMESPACE).name],
      handler: async (batch) => {
        for (const m of batch.messages) seen.push((JSON.parse(m.value) as { messageId: string }).messageId);
      },
    });
    const deadline = Date.now() + 10_000;
    while (!seen.includes(messageIds[0] ?? '') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await sub.stop();
    expect(seen).toContain(messageIds[0]);
  });

  it('reuses the _dfid cookie the browser sends, over any body anonymousId', async () => {
    const id = 'c0ffee00-1111-4222-8333-444455556666';
    const res = await post(
      '/v1/i',
      JSON.stringify({ userId: 'u-1', anonymousId: 'someone-else-entirely', traits: { plan: 'pro' } }),
      {
        cookie: `_dfid=${id}`,
      },
    );
    expect(res.status).toBe(202);
    expect(JSON.parse(recorder.published[0]?.value ?? '{}')).toMatchObject({
      type: 'identify',
      anonymousId: id,
      userId: 'u-1',
    });
    expect(res.headers.get('set-cookie')).toContain(`_dfid=${id};`);
  });

  it('takes the key from the body (sendBeacon: text/plain, no custom headers)', async () => {
    const res = await fetch(`${base}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8', origin: ORIGIN },
      body: JSON.stringify({ pipelineKey: KEY, batch: [{ type: 'track', event: 'a' }, { type: 'page' }] }),
    });
    expect(res.status).toBe(202);
    expect(recorder.published).toHaveLength(2);
  });

  it('a batch keeps the valid events and reports the invalid ones by index', async () => {
    const res = await post(
      '/v1/batch',
      JSON.stringify({ batch: [{ type: 'track', event: 'ok' }, { type: 'track' }, { type: 'bogus' }] }),
    );
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; rejected: { index: number; message: string }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(body.rejected[0]?.message).toMatch(/^event: /);
    expect(recorder.published).toHaveLength(1);
  });

  it("corrects event timestamps by the batch's clock skew (sentAt), and ignores an absurd sentAt instead of failing", async () => {
    const sentAt = new Date(Date.now() - 60_000).toISOString(); // the browser's clock is a minute behind
    const skewed = await post(
      '/v1/batch',
      JSON.stringify({ sentAt, batch: [{ type: 'track', event: 'ok', timestamp: sentAt }] }),
    );
    expect(skewed.status).toBe(202);
    const timestampOf = (i: number) =>
      (JSON.parse(recorder.published[i]?.value ?? '{}') as { timestamp?: string }).timestamp;
    const corrected = Date.parse(String(timestampOf(0)));
    expect(Math.abs(corrected - Date.now())).toBeLessThan(10_000);

    // A skew so large the corrected time is not a date: the event keeps its own timestamp.
    recorder.published.length = 0;
    const absurd = await post(
      '/v1/batch',
      JSON.stringify({
        sentAt: '-271821-04-20T00:00:00.000Z',
        batch: [{ type: 'track', event: 'ok', timestamp: '2026-01-01T00:00:00.000Z' }],
      }),
    );
    expect(absurd.status).toBe(202);
    expect(timestampOf(0)).toBe('2026-01-01T00:00:00.000Z');
  });

  it('answers CORS preflights for the collection endpoints', async () => {
    const res = await fetch(`${base}/v1/batch`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-pipeline-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-headers')).toContain('X-Pipeline-Key');
    expect(res.headers.get('access-control-allow-origin')).not.toBe('*');
  });

  it('serves d.js, small and cacheable with an ETag', async () => {
    const res = await fetch(`${base}/d.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('javascript');
    const etag = res.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"sha384-/);
    expect((await res.text()).length).toBeGreaterThan(1000);
    const again = await fetch(`${base}/d.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('HEAD on the pixel (a link scanner, a mail proxy) answers like GET but records nothing', async () => {
    const res = await fetch(`${base}/v1/pixel/track?pipelineKey=${KEY}&event=email_open`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(recorder.published).toHaveLength(0);
    const unknown = await fetch(`${base}/v1/pixel/track?pipelineKey=dk_live_${'0'.repeat(32)}`, {
      method: 'HEAD',
    });
    expect(unknown.status).toBe(401);
  });

  it('the pixel accepts a GET with the key in the query and answers a 1×1 GIF', async () => {
    const res = await fetch(
      `${base}/v1/pixel/track?pipelineKey=${KEY}&event=email_open&properties=${encodeURIComponent('{"campaign":"c1"}')}`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(JSON.parse(recorder.published[0]?.value ?? '{}')).toMatchObject({
      type: 'track',
      event: 'email_open',
      properties: { campaign: 'c1' },
      context: { provenance: 'pixel' },
    });
  });

  it('a pixel opened as a page (a link someone sent) neither plants nor reads the visitor cookie', async () => {
    const navigate = {
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
      'sec-fetch-site': 'cross-site',
    };
    // No cookie yet: the sender's anonymousId must not become the visitor's _dfid.
    const planted = await fetch(`${base}/v1/pixel/p?pipelineKey=${KEY}&anonymousId=ATTACKERchosen0001`, {
      headers: navigate,
    });
    expect(planted.status).toBe(200);
    expect(planted.headers.get('set-cookie')).toBeNull();
    // The visitor's cookie: not tied to the sender's user id.
    const victim = 'victim-visitor-id-0000001';
    const linked = await fetch(`${base}/v1/pixel/i?pipelineKey=${KEY}&userId=attacker-account`, {
      headers: { ...navigate, cookie: `_dfid=${victim}` },
    });
    expect(linked.status).toBe(200);
    expect(linked.headers.get('set-cookie')).toBeNull();
    expect(recorder.published.map((m) => JSON.parse(m.value).anonymousId)).not.toContain(victim);
    // As an image on the customer's own pages, the pixel keeps the visitor's id as before.
    const image = await fetch(`${base}/v1/pixel/p?pipelineKey=${KEY}`, {
      headers: { 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image', cookie: `_dfid=${victim}` },
    });
    expect(image.headers.get('set-cookie')).toContain(`_dfid=${victim}`);
    expect(JSON.parse(recorder.published.at(-1)?.value ?? '{}').anonymousId).toBe(victim);
  });
});

describe('server sources (HMAC)', () => {
  const body = JSON.stringify({
    type: 'track',
    event: 'order_completed',
    userId: 'u-9',
    context: { ip: '198.51.100.4' },
  });

  it('accepts a correctly signed event and trusts its forwarded context', async () => {
    const res = await fetch(`${base}/v1/events`, { method: 'POST', body, headers: signed(body) });
    expect(res.status).toBe(202);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(JSON.parse(recorder.published[0]?.value ?? '{}')).toMatchObject({
      userId: 'u-9',
      context: { provenance: 'hmac', ip: '198.51.100.4' },
    });
  });

  it('accepts the previous secret during its rotation grace window', async () => {
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      body,
      headers: signed(body, { secret: OLD_SECRET }),
    });
    expect(res.status).toBe(202);
  });

  it('signed batches go through /v1/batch', async () => {
    const batch = JSON.stringify({
      batch: [
        { type: 'track', event: 'a', userId: 'u1' },
        { type: 'identify', userId: 'u2' },
      ],
    });
    const res = await fetch(`${base}/v1/batch`, { method: 'POST', body: batch, headers: signed(batch) });
    expect(res.status).toBe(202);
    expect(recorder.published).toHaveLength(2);
  });

  it('refuses a replayed signature with 409', async () => {
    const headers = signed(body);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(202);
    const replay = await fetch(`${base}/v1/events`, { method: 'POST', body, headers });
    expect(replay.status).toBe(409);
    expect(await replay.json()).toEqual({
      error: { code: 'conflict', message: 'this signature was already used (replay)' },
    });
    expect(recorder.published).toHaveLength(1);
  });

  it('answers 503 with Retry-After when the bus is down, never a silent drop', async () => {
    recorder.fail(true);
    const res = await fetch(`${base}/v1/events`, { method: 'POST', body, headers: signed(body) });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('a signed event retried after a failure whose write was stored anyway keeps its messageId', async () => {
    // Without a client messageId, the ids derive from the signature: the pipeline drops the copy.
    const headers = signed(body);
    recorder.fail('after');
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(503);
    recorder.fail(false);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(202);
    const ids = recorder.published.map((m) => JSON.parse(m.value).messageId);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    // Another request (another signature) gets other ids.
    const other = signed(body, { timestamp: Date.now() + 1 });
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers: other })).status).toBe(202);
    expect(JSON.parse(recorder.published[2]?.value ?? '{}').messageId).not.toBe(ids[0]);
  });

  it('a copy sent while the first is still being published gets 503, not a final 409: nothing is lost', async () => {
    const headers = signed(body);
    const held = recorder.hold();
    const first = fetch(`${base}/v1/events`, { method: 'POST', body, headers });
    await held.entered;
    // The sender timed out waiting and retried: the first copy may still fail, so this must invite a retry.
    const impatient = await fetch(`${base}/v1/events`, { method: 'POST', body, headers });
    expect(impatient.status).toBe(503);
    expect(impatient.headers.get('retry-after')).toBe('1');
    // The first publish fails after all: had the retry been told 409, the event would be gone.
    recorder.fail(true);
    held.open();
    expect((await first).status).toBe(503);
    recorder.fail(false);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(202);
    expect(recorder.published).toHaveLength(1);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(409);
  });

  it('a claim left pending by a process that died mid-publish is taken over after 30 s, not refused forever', async () => {
    const headers = signed(body);
    const signature = headers['x-signature'].slice('sha256='.length);
    await gatewayCache.set(`hmac-seen:${signature}`, `pending:${Date.now() - 31_000}`, { ttlMs: 600_000 });
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(202);
    expect(recorder.published).toHaveLength(1);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(409);
  });

  it('a retry of the same signed request after a 503 is accepted, not refused as a replay', async () => {
    const headers = signed(body);
    recorder.fail(true);
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(503);
    recorder.fail(false);
    const retry = await fetch(`${base}/v1/events`, { method: 'POST', body, headers });
    expect(retry.status).toBe(202);
    expect(recorder.published).toHaveLength(1);
    // Once published, the signature is spent.
    expect((await fetch(`${base}/v1/events`, { method: 'POST', body, headers })).status).toBe(409);
    expect(recorder.published).toHaveLength(1);
  });
});

describe('hostile input: the right 4xx JSON error, nothing on the bus, the process stays up', () => {
  const deep = `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`;
  const huge = JSON.stringify({ type: 'track', event: 'x', properties: { blob: 'x'.repeat(20 * 1024) } });
  const nonUtf8 = Buffer.concat([
    Buffer.from('{"type":"track","event":"'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}'),
  ]);
  const body = JSON.stringify({ type: 'track', event: 'order', userId: 'u' });

  const cases: [string, () => Promise<Response>, number, string][] = [
    ['invalid JSON', () => post('/v1/t', '{"event":'), 400, 'invalid_json'],
    [
      'wrong content type',
      () => post('/v1/t', JSON.stringify(track), { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'unsupported_media_type',
    ],
    ['body over the limit', () => post('/v1/t', huge), 413, 'payload_too_large'],
    ['deeply nested objects', () => post('/v1/t', deep), 400, 'nesting_too_deep'],
    ['__proto__ key', () => post('/v1/t', '{"event":"x","__proto__":{"admin":true}}'), 400, 'forbidden_key'],
    [
      'constructor.prototype key',
      () => post('/v1/t', '{"event":"x","properties":{"constructor":{"prototype":{"a":1}}}}'),
      400,
      'forbidden_key',
    ],
    [
      'huge string in a field',
      () => post('/v1/t', JSON.stringify({ event: 'e'.repeat(5000) })),
      400,
      'validation_failed',
    ],
    ['non-UTF-8 bytes', () => post('/v1/t', nonUtf8), 400, 'invalid_encoding'],
    [
      'wrong types',
      () => post('/v1/t', JSON.stringify({ event: 42, properties: [] })),
      400,
      'validation_failed',
    ],
    ['a body that is not an object', () => post('/v1/t', '[1,2,3]'), 400, 'validation_failed'],
    [
      // Would digest (UTF-8: U+FFFD) like another id: one person's profile, erasure or consent for another's.
      'an id with an unpaired surrogate',
      () => post('/v1/t', '{"type":"track","event":"x","anonymousId":"a\\ud800"}'),
      400,
      'validation_failed',
    ],
    [
      'a user id with an unpaired surrogate in a batch',
      () => post('/v1/batch', JSON.stringify({ batch: [{ type: 'identify', userId: '\udc00' }] })),
      400,
      'validation_failed',
    ],
    [
      'missing key',
      () => post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': '' }),
      401,
      'unauthorized',
    ],
    [
      'malformed key',
      () => post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': 'sk_live_nope' }),
      401,
      'unauthorized',
    ],
    [
      'unknown key',
      () => post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': `dk_live_${'0'.repeat(32)}` }),
      401,
      'unauthorized',
    ],
    [
      'revoked (disabled) key',
      () => post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': DISABLED_KEY }),
      401,
      'unauthorized',
    ],
    [
      'origin not allowed',
      () => post('/v1/t', JSON.stringify(track), { origin: 'https://evil.example.net' }),
      403,
      'forbidden',
    ],
    [
      'look-alike origin',
      () => post('/v1/t', JSON.stringify(track), { origin: 'https://example.com.evil.net' }),
      403,
      'forbidden',
    ],
    [
      'batch over MAX_BATCH_SIZE',
      () => post('/v1/batch', JSON.stringify({ batch: Array.from({ length: 6 }, () => ({ type: 'page' })) })),
      413,
      'payload_too_large',
    ],
    ['empty batch', () => post('/v1/batch', JSON.stringify({ batch: [] })), 400, 'validation_failed'],
    [
      'HMAC missing signature',
      () =>
        fetch(`${base}/v1/events`, { method: 'POST', body, headers: { ...signed(body), 'x-signature': '' } }),
      401,
      'unauthorized',
    ],
    [
      'HMAC wrong secret',
      () =>
        fetch(`${base}/v1/events`, {
          method: 'POST',
          body,
          headers: signed(body, { secret: randomBytes(32) }),
        }),
      401,
      'unauthorized',
    ],
    [
      'HMAC expired timestamp',
      () =>
        fetch(`${base}/v1/events`, {
          method: 'POST',
          body,
          headers: signed(body, { timestamp: Date.now() - 6 * 60_000 }),
        }),
      401,
      'unauthorized',
    ],
    [
      'HMAC future timestamp',
      () =>
        fetch(`${base}/v1/events`, {
          method: 'POST',
          body,
          headers: signed(body, { timestamp: Date.now() + 6 * 60_000 }),
        }),
      401,
      'unauthorized',
    ],
    [
      'HMAC body altered after signing',
      () =>
        fetch(`${base}/v1/events`, {
          method: 'POST',
          body: body.replace('order', 'refund'),
          headers: signed(body),
        }),
      401,
      'unauthorized',
    ],
    ['pixel of an unknown type', () => fetch(`${base}/v1/pixel/steal?pipelineKey=${KEY}`), 404, 'not_found'],
    [
      'pixel with bad properties JSON',
      () => fetch(`${base}/v1/pixel/track?pipelineKey=${KEY}&properties=%7Bnope`),
      400,
      'invalid_json',
    ],
    [
      'pixel with a constructor.prototype key in its properties',
      () =>
        fetch(
          `${base}/v1/pixel/track?pipelineKey=${KEY}&properties=${encodeURIComponent('{"constructor":{"prototype":{"admin":true}}}')}`,
        ),
      400,
      'forbidden_key',
    ],
    [
      "a server pipeline's key without a signature, on a browser endpoint",
      () => post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': SERVER_KEY, origin: '' }),
      401,
      'unauthorized',
    ],
    [
      "a server pipeline's key without a signature, on /v1/batch",
      () =>
        post('/v1/batch', JSON.stringify({ batch: [track] }), { 'x-pipeline-key': SERVER_KEY, origin: '' }),
      401,
      'unauthorized',
    ],
    [
      "a server pipeline's key on the pixel",
      () => fetch(`${base}/v1/pixel/track?pipelineKey=${SERVER_KEY}&event=x`),
      401,
      'unauthorized',
    ],
  ];

  it.each(cases)('%s', async (_name, send, status, code) => {
    const res = await send();
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    expect(JSON.stringify(body)).not.toContain(SECRET.toString('hex'));
    expect(recorder.published).toHaveLength(0);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    // still up
    expect((await fetch(`${base}/d.js`, { method: 'HEAD' })).status).toBe(200);
  });

  it("a browser request's refusals carry CORS headers, so the SDK can read them and stop retrying", async () => {
    const evil = 'https://evil.example.net';
    const refusals = [
      await post('/v1/t', JSON.stringify(track), { 'x-pipeline-key': `dk_live_${'0'.repeat(32)}` }),
      await post('/v1/t', JSON.stringify(track), { origin: evil }),
      await post('/v1/t', '{"event":'),
      await post('/v1/batch', JSON.stringify({ batch: [track] }), { 'x-pipeline-key': SERVER_KEY }),
    ];
    expect(refusals.map((r) => r.status)).toEqual([401, 403, 400, 401]);
    expect(refusals.map((r) => r.headers.get('access-control-allow-origin'))).toEqual([
      ORIGIN,
      evil,
      ORIGIN,
      ORIGIN,
    ]);
    expect(recorder.published).toHaveLength(0);
  });

  it('schema errors name the path of the first bad field', async () => {
    const res = await post('/v1/t', JSON.stringify({ event: 'x', context: { page: { url: 42 } } }));
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /^context\.page\.url: /,
    );
  });

  it('a request body cut off mid-stream is refused and the server stays up', async () => {
    await new Promise<void>((resolve) => {
      const req = rawRequest(`${base}/v1/t`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': '1000', 'x-pipeline-key': KEY },
      });
      req.on('error', () => resolve());
      req.write('{"event":"x"');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    expect(recorder.published).toHaveLength(0);
    expect((await post('/v1/t', JSON.stringify(track))).status).toBe(202);
  });
});

describe('an event the bus cannot carry', () => {
  // A bus that carries 4 KiB beyond a dead letter's reserve, behind a gateway that reads bodies up to 64 KiB.
  const room = 4096;
  async function smallBusGateway() {
    const small = createPostgresBus({
      db,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
      maxMessageBytes: DEAD_LETTER_RESERVE_BYTES + room,
    });
    const published: OutgoingMessage[] = [];
    const metrics = createMetrics({ processMetrics: false });
    const gateway = createGateway({
      config: { ...config, maxPayloadSize: 64 * 1024 },
      directory,
      bus: {
        maxMessageBytes: small.maxMessageBytes,
        async publish(topic, messages, options) {
          const receipts = await small.publish(topic, messages, options);
          published.push(...messages);
          return receipts;
        },
      },
      cache: createMemoryCache({ namespace: `${NAMESPACE}small` }),
      sdk: { code: '', integrity: 'x' },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      metrics,
    });
    const router = createRouter();
    gateway.register(router);
    const server = createServer({ handler: (req, res) => router.handle(req, res) });
    const { port } = await server.listen(0, '127.0.0.1');
    const send = (path: string, body: unknown) =>
      fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json', origin: ORIGIN, 'x-pipeline-key': KEY },
      });
    const rejectedAsTooLarge = async () => {
      const family = (await metrics.registry.getMetricsAsJSON()).find(
        (m) => m.name === 'signal_events_rejected_total',
      );
      return family?.values.find((v) => v.labels.reason === 'payload_too_large')?.value ?? 0;
    };
    return {
      send,
      published,
      rejectedAsTooLarge,
      close: async () => {
        await server.close(1000);
        await small.close();
      },
    };
  }
  // Within every bound of the event schema (strings of 8 KiB at most), but 3 × 2 KiB over the room.
  const large = {
    ...track,
    properties: { a: 'x'.repeat(2048), b: 'y'.repeat(2048), c: 'z'.repeat(2048) },
  };

  it('is refused with 413 naming its size, and nothing of it reaches the bus', async () => {
    const g = await smallBusGateway();
    try {
      const res = await g.send('/v1/t', large);
      expect(res.status).toBe(413);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('payload_too_large');
      expect(body.error.message).toMatch(
        /^the event is \d+ bytes once stamped; the event bus carries at most 4096$/,
      );
      expect(body.error.message).not.toContain('xxxx');
      expect(g.published).toEqual([]);
      expect(await g.rejectedAsTooLarge()).toBe(1);
      // An event that fits is accepted by the same gateway.
      expect((await g.send('/v1/t', track)).status).toBe(202);
      expect(g.published).toHaveLength(1);
    } finally {
      await g.close();
    }
  });

  it('in a batch, is rejected on its own while the rest is accepted', async () => {
    const g = await smallBusGateway();
    try {
      const res = await g.send('/v1/batch', {
        batch: [
          { ...track, type: 'track', messageId: 'fits-1' },
          { ...large, type: 'track', messageId: 'too-large' },
          { ...track, type: 'track', messageId: 'fits-2' },
        ],
      });
      expect(res.status).toBe(202);
      const body = (await res.json()) as {
        accepted: number;
        messageIds: string[];
        rejected: { index: number; code: string }[];
      };
      expect(body.accepted).toBe(2);
      expect(body.messageIds).toEqual(['fits-1', 'fits-2']);
      expect(body.rejected).toEqual([expect.objectContaining({ index: 1, code: 'payload_too_large' })]);
      expect(g.published.map((m) => JSON.parse(m.value).messageId)).toEqual(['fits-1', 'fits-2']);
    } finally {
      await g.close();
    }
  });
});

describe('rate limiting', () => {
  /** A gateway of its own, on its own port, with this directory and a fresh rate-limit cache. */
  async function gatewayServer(
    directory: PipelineDirectory,
    cacheSuffix: string,
    overrides: Partial<GatewayConfig> = {},
  ) {
    const gateway = createGateway({
      config: { ...config, ...overrides },
      directory,
      bus: recorder,
      cache: createMemoryCache({ namespace: `${NAMESPACE}${cacheSuffix}` }),
      sdk: { code: '', integrity: 'x' },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      metrics: createMetrics({ processMetrics: false }),
    });
    const router = createRouter();
    gateway.register(router);
    const server = createServer({ handler: (req, res) => router.handle(req, res) });
    const { port } = await server.listen(0, '127.0.0.1');
    return { server, port };
  }

  it("context.ip: a proxy's X-Forwarded-For entry, believed only from TRUSTED_PROXY_CIDRS", async () => {
    const ipOf = async (overrides: Partial<GatewayConfig>) => {
      const { server: proxied, port } = await gatewayServer(directory, 'ip', overrides);
      try {
        recorder.published.length = 0;
        const res = await fetch(`http://127.0.0.1:${port}/v1/t`, {
          method: 'POST',
          body: JSON.stringify(track),
          headers: {
            'content-type': 'application/json',
            origin: ORIGIN,
            'x-pipeline-key': KEY,
            'x-forwarded-for': '1.1.1.1, 198.51.100.9',
          },
        });
        expect(res.status).toBe(202);
        return canonicalEventSchema.parse(JSON.parse(recorder.published[0]?.value ?? '{}')).context.ip;
      } finally {
        await proxied.close(1000);
      }
    };
    // The test client (127.0.0.1) as the ingress: its entry names the visitor.
    expect(await ipOf({ trustedProxyHops: 1, trustedProxyCidrs: ['127.0.0.1'] })).toBe('198.51.100.9');
    // The same request from outside the ingress network: the header is the client's own writing.
    expect(await ipOf({ trustedProxyHops: 1, trustedProxyCidrs: ['10.0.0.0/8'] })).toBe('127.0.0.1');
    // Hops counted, not checked (no list): believed from anyone.
    expect(await ipOf({ trustedProxyHops: 1 })).toBe('198.51.100.9');
  });

  it('a client trying made-up keys is refused before the database, and real keys stay served', async () => {
    let lookups = 0;
    const counted = cachedPipelineDirectory(
      {
        findPipelineByKey: async (key) => {
          lookups += 1;
          return directory.findPipelineByKey(key);
        },
      },
      { ttlMs: 300_000, maxEntries: 10 },
    );
    const { server: guarded, port } = await gatewayServer(counted, 'keys');
    const send = (key: string) =>
      fetch(`http://127.0.0.1:${port}/v1/t`, {
        method: 'POST',
        body: JSON.stringify(track),
        headers: { 'content-type': 'application/json', origin: ORIGIN, 'x-pipeline-key': key },
      });
    try {
      // A busy site's first burst: every request asks for the same key before it is cached. None is refused.
      const burst = await Promise.all(Array.from({ length: 40 }, () => send(KEY)));
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 202));
      const statuses: number[] = [];
      for (let i = 0; i < 40; i += 1) {
        statuses.push((await send(`dk_live_${randomBytes(12).toString('hex')}`)).status);
      }
      // 20 lookups a second from one address, then 429 without asking the database.
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(20);
      expect(statuses).toContain(429);
      expect(lookups).toBeLessThanOrEqual(21);
      // Made-up keys evict only each other: the real one is still known, no lookup, still accepted.
      const before = lookups;
      expect((await send(KEY)).status).toBe(202);
      expect(lookups).toBe(before);
    } finally {
      await guarded.close(1000);
    }
  });

  it('answers 429 with Retry-After above the per-pipeline limit', async () => {
    const limited: PipelineDirectory = {
      findPipelineByKey: async (key) =>
        key === KEY ? { ...browserPipeline, pipelineId: 'pl_limited', rateLimitRps: 3 } : null,
    };
    const { server: limitedServer, port } = await gatewayServer(limited, 'rl');
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/v1/t`, {
          method: 'POST',
          body: JSON.stringify(track),
          headers: { 'content-type': 'application/json', 'x-pipeline-key': KEY },
        });
        statuses.push(res.status);
        if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect(statuses.filter((s) => s === 202)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(2);
    } finally {
      await limitedServer.close(1000);
    }
  });

  it('replays of a captured signed request are refused with 409 and do not spend the rate limit', async () => {
    const limited: PipelineDirectory = {
      findPipelineByKey: async (key) =>
        key === SERVER_KEY ? { ...serverPipeline, pipelineId: 'pl_replayed', rateLimitRps: 3 } : null,
    };
    const { server: limitedServer, port } = await gatewayServer(limited, 'rlr');
    const url = `http://127.0.0.1:${port}/v1/events`;
    try {
      const captured = JSON.stringify({ type: 'track', event: 'a', userId: 'u' });
      const headers = signed(captured);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await fetch(url, { method: 'POST', body: captured, headers })).status);
      expect(statuses).toEqual([202, 409, 409, 409, 409]);
      const legit = JSON.stringify({ type: 'track', event: 'b', userId: 'u' });
      expect((await fetch(url, { method: 'POST', body: legit, headers: signed(legit) })).status).toBe(202);
    } finally {
      await limitedServer.close(1000);
    }
  });

  it('a signed request refused with 429 is accepted when retried after Retry-After', async () => {
    const limited: PipelineDirectory = {
      findPipelineByKey: async (key) =>
        key === SERVER_KEY ? { ...serverPipeline, pipelineId: 'pl_limited_server', rateLimitRps: 1 } : null,
    };
    const { server: limitedServer, port } = await gatewayServer(limited, 'rls');
    const url = `http://127.0.0.1:${port}/v1/events`;
    try {
      const first = JSON.stringify({ type: 'track', event: 'a', userId: 'u' });
      const second = JSON.stringify({ type: 'track', event: 'b', userId: 'u' });
      expect((await fetch(url, { method: 'POST', body: first, headers: signed(first) })).status).toBe(202);
      const headers = signed(second);
      const refused = await fetch(url, { method: 'POST', body: second, headers });
      expect(refused.status).toBe(429);
      await new Promise((resolve) =>
        setTimeout(resolve, 1000 * Number(refused.headers.get('retry-after')) + 100),
      );
      const retry = await fetch(url, { method: 'POST', body: second, headers });
      expect(retry.status).toBe(202);
      expect(recorder.published.map((m) => JSON.parse(m.value).event)).toEqual(['a', 'b']);
    } finally {
      await limitedServer.close(1000);
    }
  });
});
