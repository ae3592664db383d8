import { randomBytes, randomUUID } from 'node:crypto';
import { type AuditCryptoSink, auditMigrations, createAuditLog, cryptoAuditSink } from '@signal/audit';
import { type Cache, createMemoryCache, MemoryCacheStore } from '@signal/cache';
import { type CryptoService, createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics, type Metrics } from '@signal/telemetry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_LINKED_DOMAINS, OPEN_REDIRECT_CORPUS } from '../../test/open-redirect-corpus';
import {
  ANONYMOUS_ID,
  inMemoryPipelines,
  OTHER_PIPELINE,
  OTHER_PIPELINE_KEY,
  PIPELINE_KEY,
  recordingLogger,
  startServer,
  type TestServer,
} from '../../test/support';
import { identityHubSettings } from '../config';
import { createIdentityHub, type IdentityHub } from '../identity-hub';
import { cacheSingleUseStore } from '../tokens/single-use';
import { INVALID_TOKEN_BODY } from './identity.routes';

const LINKED = ['site-a.localhost', 'www.shop.example', ...CORPUS_LINKED_DOMAINS];

let db: Database;
let audit: ReturnType<typeof createAuditLog>;
let sink: AuditCryptoSink;
let crypto: CryptoService;

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, auditMigrations);
  const logger = recordingLogger();
  audit = createAuditLog({ db, logger });
  sink = cryptoAuditSink(audit, logger);
  crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }), audit: sink });
});
afterAll(async () => {
  await sink.drain();
  await db.close();
});

interface Harness {
  readonly server: TestServer;
  readonly hub: IdentityHub;
  readonly metrics: Metrics;
  readonly logger: ReturnType<typeof recordingLogger>;
  readonly pipelines: ReturnType<typeof inMemoryPipelines>;
  readonly cache: Cache;
  /** The in-process key space behind `cache`, as in the all-in-one (gateway and processor share it). */
  readonly store: MemoryCacheStore;
  readonly clock: { now: number };
  /** `site-a.localhost:<port>` etc.: the Host a browser would send to the all-in-one's port. */
  host(site: string): string;
  origin(site: string): string;
}

const open: Harness[] = [];

/** Counters that never reach a limit: the tests of everything but the rate limits send many requests. */
const UNLIMITED: Pick<Cache, 'incrementWindow'> = {
  incrementWindow: async (_key, windowMs) => ({ count: 1, resetInMs: windowMs }),
};

async function harness(
  settings: {
    publicHosts?: string[];
    cookieDomains?: string[];
    rateLimitRps?: number;
    ipRateLimitRps?: number;
    trustedProxyHops?: number;
    trustedProxyCidrs?: string[];
  } = {},
  options: {
    /** `clocked`: real counters on the harness clock (the limits apply); default: never limited. */
    limits?: 'unlimited' | 'clocked' | Pick<Cache, 'incrementWindow'>;
    /** Bound of the shared in-process store (default 100 000, as `openCache()` builds it). */
    maxEntries?: number;
  } = {},
): Promise<Harness> {
  const metrics = createMetrics({ processMetrics: false });
  const logger = recordingLogger();
  const pipelines = inMemoryPipelines([...LINKED]);
  const clock = { now: Date.now() };
  const store = new MemoryCacheStore({
    now: () => clock.now,
    ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
  });
  const cache = createMemoryCache({ namespace: 'routes', store });
  const limits = options.limits ?? 'unlimited';
  const hub = createIdentityHub({
    settings: identityHubSettings({ namespace: 'test', tokenTtlSeconds: 120, ...settings }),
    crypto,
    singleUse: cacheSingleUseStore(cache, { now: () => clock.now }),
    pipelines,
    linkedDomains: pipelines,
    rateLimitCache:
      limits === 'unlimited'
        ? UNLIMITED
        : limits === 'clocked'
          ? createMemoryCache({ store: new MemoryCacheStore({ now: () => clock.now }) })
          : limits,
    logger,
    metrics,
    now: () => clock.now,
  });
  const server = await startServer((router) => hub.register(router));
  const h: Harness = {
    server,
    hub,
    metrics,
    logger,
    pipelines,
    cache,
    store,
    clock,
    host: (site) => `${site}:${server.port}`,
    origin: (site) => `http://${site}:${server.port}`,
  };
  open.push(h);
  return h;
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.server.close();
    await h.cache.close();
    h.store.close();
    await h.hub.stop();
  }
});

function issue(h: Harness, to: string, headers: Record<string, string> = {}) {
  return h.server.send({
    method: 'POST',
    path: '/v1/identity/token',
    host: h.host('site-a.localhost'),
    headers: {
      origin: h.origin('site-a.localhost'),
      cookie: `other=1; _dfid=${ANONYMOUS_ID}`,
      'x-pipeline-key': PIPELINE_KEY,
      ...headers,
    },
    body: { to },
  });
}

function resolveOn(h: Harness, site: string, token: unknown, headers: Record<string, string> = {}) {
  return h.server.send({
    method: 'POST',
    path: '/v1/identity/resolve',
    host: h.host(site),
    headers: { origin: h.origin(site), ...headers },
    body: { token },
  });
}

async function tokenFor(h: Harness, to: string): Promise<string> {
  const reply = await issue(h, to);
  expect(reply.status).toBe(200);
  return (reply.json() as { token: string }).token;
}

async function rejections(h: Harness, reason: string): Promise<number> {
  const text = await h.metrics.metrics();
  const match = new RegExp(`signal_identity_token_rejections_total\\{reason="${reason}"\\} (\\d+)`).exec(
    text,
  );
  return Number(match?.[1] ?? 0);
}

describe('POST /v1/identity/token', () => {
  it('issues a token for a linked destination, with CORS for the exact linked origin', async () => {
    const h = await harness();
    const to = `http://site-b.localhost:${h.server.port}/welcome?x=1#top`;
    const reply = await issue(h, to);
    expect(reply.status).toBe(200);
    const body = reply.json() as { token: string; url: string; expiresAt: string };
    expect(body.token).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(body.url).toBe(`http://site-b.localhost:${h.server.port}/welcome?x=1&_dftk=${body.token}#top`);
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(120_000);
    expect(reply.headers['access-control-allow-origin']).toBe(h.origin('site-a.localhost'));
    expect(reply.headers['access-control-allow-credentials']).toBe('true');
    expect(reply.headers.vary).toBe('Origin');
    expect(reply.headers['cache-control']).toBe('no-store');
  });

  it('takes the pipeline key from the body too', async () => {
    const h = await harness();
    const reply = await h.server.send({
      method: 'POST',
      path: '/v1/identity/token',
      host: h.host('site-a.localhost'),
      headers: { origin: h.origin('site-a.localhost'), cookie: `_dfid=${ANONYMOUS_ID}` },
      body: { to: 'https://site-b.localhost/', pipelineKey: PIPELINE_KEY },
    });
    expect(reply.status).toBe(200);
  });

  it('refuses a missing or unknown pipeline key with 401', async () => {
    const h = await harness();
    expect((await issue(h, 'https://site-b.localhost/', { 'x-pipeline-key': '' })).status).toBe(401);
    expect(
      (await issue(h, 'https://site-b.localhost/', { 'x-pipeline-key': 'dk_test_unknownunknownunknown' }))
        .status,
    ).toBe(401);
    expect((await issue(h, 'https://site-b.localhost/', { 'x-pipeline-key': 'not-a-key' })).status).toBe(401);
  });

  it('refuses a page that is not on a linked domain, without CORS headers so it cannot read the answer', async () => {
    const h = await harness();
    for (const origin of [
      'https://evil.example',
      'null',
      `http://site-a.localhost.evil.example:${h.server.port}`,
      'http://www.shop.example',
      'https://shop.example',
    ]) {
      const reply = await issue(h, 'https://site-b.localhost/', { origin });
      expect(reply.status).toBe(403);
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('refuses a destination that is not linked (400), and answers 409 when there is no _dfid to carry', async () => {
    const h = await harness();
    const bad = await issue(h, 'https://evil.example/');
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'validation_failed' } });
    const none = await issue(h, 'https://site-b.localhost/', { cookie: 'other=1' });
    expect(none.status).toBe(409);
    expect(none.json()).toMatchObject({ error: { code: 'no_identity' } });
  });

  it('answers 503 when the pipeline lookup fails', async () => {
    const h = await harness();
    h.pipelines.failing = true;
    const reply = await issue(h, 'https://site-b.localhost/');
    expect(reply.status).toBe(503);
    expect(reply.headers['retry-after']).toBe('1');
  });

  it('answers the CORS preflight with the methods and headers it accepts', async () => {
    const h = await harness();
    const reply = await h.server.send({
      method: 'OPTIONS',
      path: '/v1/identity/token',
      host: h.host('site-a.localhost'),
      headers: { origin: h.origin('site-a.localhost'), 'access-control-request-method': 'POST' },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe(h.origin('site-a.localhost'));
    expect(reply.headers['access-control-allow-headers']).toBe('Content-Type, X-Pipeline-Key');
    expect(reply.headers['access-control-allow-credentials']).toBe('true');
  });
});

describe('GET /v1/identity/redirect', () => {
  function redirect(h: Harness, to: string, options: { cookie?: string; key?: string } = {}) {
    const query = new URLSearchParams({ to, pipelineKey: options.key ?? PIPELINE_KEY });
    return h.server.send({
      method: 'GET',
      path: `/v1/identity/redirect?${query}`,
      host: h.host('site-a.localhost'),
      headers: { cookie: options.cookie ?? `_dfid=${ANONYMOUS_ID}` },
    });
  }

  it('redirects to the destination with a fresh token that resolves on the destination site', async () => {
    const h = await harness();
    const to = `http://site-b.localhost:${h.server.port}/landing?utm_source=a`;
    const reply = await redirect(h, to);
    expect(reply.status).toBe(302);
    const location = String(reply.headers.location);
    expect(location.startsWith(`${to}&_dftk=v1.`)).toBe(true);
    expect(reply.headers['cache-control']).toBe('no-store');
    const token = new URL(location).searchParams.get('_dftk');
    const resolved = await resolveOn(h, 'site-b.localhost', token);
    expect(resolved.status).toBe(200);
    expect(resolved.json()).toEqual({ anonymousId: ANONYMOUS_ID });
  });

  it('never redirects to anything off the allowlist: every entry of the open-redirect corpus gets 400', async () => {
    const h = await harness();
    for (const to of OPEN_REDIRECT_CORPUS) {
      const reply = await redirect(h, to);
      expect({ to, status: reply.status, location: reply.headers.location }).toEqual({
        to,
        status: 400,
        location: undefined,
      });
    }
  });

  it('redirects without a token when the visitor has no _dfid yet', async () => {
    const h = await harness();
    const reply = await redirect(h, 'https://www.shop.example/p', { cookie: '' });
    expect(reply.status).toBe(302);
    expect(reply.headers.location).toBe('https://www.shop.example/p');
  });

  it('refuses an unknown pipeline key and a missing destination without redirecting', async () => {
    const h = await harness();
    const badKey = await redirect(h, 'https://www.shop.example/', { key: 'dk_test_unknownunknownunknown' });
    expect(badKey.status).toBe(401);
    expect(badKey.headers.location).toBeUndefined();
    const missing = await h.server.send({
      method: 'GET',
      path: `/v1/identity/redirect?pipelineKey=${PIPELINE_KEY}`,
      host: h.host('site-a.localhost'),
    });
    expect(missing.status).toBe(400);
    expect(missing.headers.location).toBeUndefined();
  });
});

describe('POST /v1/identity/resolve', () => {
  it('sets _dfid on the destination site (HttpOnly, Secure, SameSite=Lax) and returns the anonymous id', async () => {
    const h = await harness();
    const token = await tokenFor(h, `http://site-b.localhost:${h.server.port}/`);
    const reply = await resolveOn(h, 'site-b.localhost', token);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ anonymousId: ANONYMOUS_ID });
    expect(reply.headers['set-cookie']).toEqual([
      `_dfid=${ANONYMOUS_ID}; Max-Age=34560000; Path=/; HttpOnly; Secure; SameSite=Lax`,
    ]);
    expect(reply.headers['access-control-allow-origin']).toBe(h.origin('site-b.localhost'));
    expect(reply.headers['access-control-allow-credentials']).toBe('true');
  });

  it('refuses a second use with the one generic answer, and counts it as a replay', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(200);
    const again = await resolveOn(h, 'site-b.localhost', token);
    expect(again.status).toBe(400);
    expect(again.json()).toEqual(INVALID_TOKEN_BODY);
    expect(again.text).toBe(
      '{"error":{"code":"invalid_token","message":"the token is invalid or has expired"}}',
    );
    expect(again.headers['set-cookie']).toBeUndefined();
    expect(await rejections(h, 'replayed')).toBe(1);
  });

  it('refuses a token presented on another site, and that attempt does not use it up', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    const elsewhere = await resolveOn(h, 'site-a.localhost', token);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.json()).toEqual(INVALID_TOKEN_BODY);
    expect(elsewhere.headers['access-control-allow-origin']).toBeUndefined();
    // A page on site A posting to site B's hub: Origin and Host disagree about the audience.
    const mixed = await resolveOn(h, 'site-b.localhost', token, { origin: h.origin('site-a.localhost') });
    expect(mixed.status).toBe(400);
    expect(await rejections(h, 'commitment_mismatch')).toBe(1);
    expect(await rejections(h, 'audience_not_served')).toBe(1);
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(200);
  });

  it('refuses expired, tampered, truncated, garbage and missing tokens with the same body', async () => {
    const h = await harness();
    const expired = await tokenFor(h, 'https://site-b.localhost/');
    const fresh = await tokenFor(h, 'https://site-b.localhost/');
    const bytes = Buffer.from(fresh.slice(3), 'base64url');
    bytes[90] = (bytes[90] ?? 0) ^ 0x01;
    const tampered = `v1.${bytes.toString('base64url')}`;
    const cases: [token: unknown, late: boolean][] = [
      [expired, true],
      [tampered, false],
      [fresh.slice(0, -10), false],
      ['garbage', false],
      ['', false],
      [42, false],
      [null, false],
      [undefined, false],
    ];
    const refused = new Set<string>();
    for (const [token, late] of cases) {
      h.clock.now += late ? 126_000 : 0;
      const reply = await resolveOn(h, 'site-b.localhost', token);
      h.clock.now -= late ? 126_000 : 0;
      refused.add(`${reply.status} ${reply.text}`);
    }
    expect([...refused]).toEqual([`400 ${JSON.stringify(INVALID_TOKEN_BODY)}`]);
    expect(await rejections(h, 'expired')).toBe(1);
    expect(await rejections(h, 'authentication_failed')).toBe(2); // tampered, truncated
    expect(await rejections(h, 'malformed')).toBe(5);
    // The tampered token was a copy: the genuine one still works.
    expect((await resolveOn(h, 'site-b.localhost', fresh)).status).toBe(200);
  });

  it('records crypto.decrypt_failed in the audit log for a tampered token, without the token', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    const bytes = Buffer.from(token.slice(3), 'base64url');
    bytes[30] = (bytes[30] ?? 0) ^ 0x80;
    const before = (await audit.list({ action: 'crypto.decrypt_failed' })).data.length;
    expect((await resolveOn(h, 'site-b.localhost', `v1.${bytes.toString('base64url')}`)).status).toBe(400);
    await sink.drain();
    const entries = (await audit.list({ action: 'crypto.decrypt_failed' })).data;
    expect(entries).toHaveLength(before + 1);
    const entry = JSON.stringify(entries[0]);
    expect(entry).toContain('commitment_mismatch');
    expect(entry).toContain('xdomain-token');
    expect(entry).not.toContain(token.slice(3, 40));
    expect(entry).not.toContain(ANONYMOUS_ID);
  });

  it('logs the reason, never the token or the visitor', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    await resolveOn(h, 'site-b.localhost', token);
    await resolveOn(h, 'site-b.localhost', token);
    const warnings = h.logger.entries.filter((e) => e.msg === 'cross-domain token refused');
    expect(warnings.map((e) => e.obj)).toEqual([expect.objectContaining({ reason: 'replayed' })]);
    const logged = JSON.stringify(h.logger.entries);
    expect(logged).not.toContain(token.slice(3, 40));
    expect(logged).not.toContain(ANONYMOUS_ID);
  });

  it('refuses a token whose audience was unlinked since it was issued', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    h.pipelines.linked = ['site-a.localhost'];
    const reply = await resolveOn(h, 'site-b.localhost', token);
    expect(reply.status).toBe(400);
    expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    expect(await rejections(h, 'audience_not_linked')).toBe(1);
  });

  it('fails closed with 503 when the single-use store is down: never accepts a token unchecked', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    await h.cache.close();
    const reply = await resolveOn(h, 'site-b.localhost', token);
    expect(reply.status).toBe(503);
    expect(reply.json()).toMatchObject({ error: { code: 'unavailable' } });
    expect(reply.headers['retry-after']).toBe('1');
    expect(reply.headers['set-cookie']).toBeUndefined();
  });

  it('issues tokens only to pages: a request without Origin cannot choose the identity a visitor adopts', async () => {
    const h = await harness();
    // Outside a browser anyone can send any _dfid: a token for it would plant that id on whoever opens the link.
    const planted = await h.server.send({
      method: 'POST',
      path: '/v1/identity/token',
      host: h.host('site-a.localhost'),
      headers: { cookie: '_dfid=attackerattackerattacker01', 'x-pipeline-key': PIPELINE_KEY },
      body: { to: 'https://site-b.localhost/landing' },
    });
    expect(planted.status).toBe(403);
    expect(planted.json()).toMatchObject({
      error: { code: 'forbidden', message: expect.stringContaining('Origin') },
    });
    expect(planted.headers['access-control-allow-origin']).toBeUndefined();
    expect((await issue(h, 'https://site-b.localhost/landing')).status).toBe(200);
  });

  it('behind a proxy, answers only for the configured public hosts', async () => {
    const h = await harness({ publicHosts: ['site-b.localhost'] });
    const token = await tokenFor(h, 'https://site-b.localhost/').catch(() => '');
    expect(token).toBe('');
    const issuedOnB = await h.server.send({
      method: 'POST',
      path: '/v1/identity/token',
      host: h.host('site-b.localhost'),
      headers: {
        cookie: `_dfid=${ANONYMOUS_ID}`,
        'x-pipeline-key': PIPELINE_KEY,
        origin: 'http://site-b.localhost',
      },
      body: { to: 'https://site-b.localhost/' },
    });
    expect(issuedOnB.status).toBe(200);
    const spoofed = await resolveOn(h, 'evil.localhost', (issuedOnB.json() as { token: string }).token, {
      origin: 'http://site-b.localhost',
    });
    expect(spoofed.status).toBe(400);
    expect(await rejections(h, 'untrusted_host')).toBe(1);
  });

  it('on a collection subdomain, redeems for a sibling site host and sets the cookie on the cookie domain', async () => {
    const h = await harness({ cookieDomains: ['shop.example'] });
    const token = await tokenFor(h, 'https://www.shop.example/checkout');
    const reply = await h.server.send({
      method: 'POST',
      path: '/v1/identity/resolve',
      host: 'data.shop.example',
      headers: { origin: 'https://www.shop.example' },
      body: { token },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['set-cookie']).toEqual([
      `_dfid=${ANONYMOUS_ID}; Max-Age=34560000; Path=/; Domain=shop.example; HttpOnly; Secure; SameSite=Lax`,
    ]);
    expect(reply.headers['access-control-allow-origin']).toBe('https://www.shop.example');
  });

  it('without a cookie domain, a hub on another host does not serve the audience', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://www.shop.example/');
    const reply = await h.server.send({
      method: 'POST',
      path: '/v1/identity/resolve',
      host: 'data.shop.example',
      headers: { origin: 'https://www.shop.example' },
      body: { token },
    });
    expect(reply.status).toBe(400);
    expect(await rejections(h, 'audience_not_served')).toBe(1);
  });

  it('without an Origin header (not a browser), the audience is the host the request arrived on', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    const reply = await h.server.send({
      method: 'POST',
      path: '/v1/identity/resolve',
      host: h.host('site-b.localhost'),
      body: { token },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('binding to the pipeline and the host (cross-pipeline and cross-tenant leaks)', () => {
  /** The visitor's browser, sent to the redirect endpoint on site A's data host (its `_dfid` lives there). */
  function redirectOnSiteA(h: Harness, to: string, key: string, headers: Record<string, string> = {}) {
    const query = new URLSearchParams({ to, pipelineKey: key });
    return h.server.send({
      method: 'GET',
      path: `/v1/identity/redirect?${query}`,
      host: h.host('site-a.localhost'),
      headers: { cookie: `_dfid=${ANONYMOUS_ID}`, ...headers },
    });
  }

  async function refusalCount(h: Harness, reason: string): Promise<number> {
    const text = await h.metrics.metrics();
    const match = new RegExp(
      `signal_identity_request_refusals_total\\{endpoint="redirect",reason="${reason}"\\} (\\d+)`,
    ).exec(text);
    return Number(match?.[1] ?? 0);
  }

  it("the redirect does not carry site A's visitor to another org's pipeline that does not list site A", async () => {
    // Org B's pipeline links only its own site. A page there navigates the visitor (top level, so the
    // SameSite=Lax `_dfid` of site A's data host is sent) to the redirect with org B's key.
    const h = await harness();
    h.pipelines.others.push({ key: OTHER_PIPELINE_KEY, ref: OTHER_PIPELINE, linked: ['evil.example'] });
    const reply = await redirectOnSiteA(h, 'https://evil.example/collect', OTHER_PIPELINE_KEY);
    // Old code: 302 to https://evil.example/collect?_dftk=v1.…, and org B's server redeemed it
    // (POST /v1/identity/resolve, Host: evil.example) for site A's anonymous id.
    const location = String(reply.headers.location);
    const token = new URL(location).searchParams.get('_dftk');
    if (token !== null) {
      const leaked = await h.server.send({
        method: 'POST',
        path: '/v1/identity/resolve',
        host: 'evil.example',
        body: { token },
      });
      expect(leaked.text).not.toContain(ANONYMOUS_ID);
    }
    expect(reply.status).toBe(302);
    expect(location).toBe('https://evil.example/collect');
    expect(await refusalCount(h, 'host_not_linked')).toBe(1);
    // The visitor's own pipeline (it links site A) still carries the identity from the same host.
    const own = await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY);
    expect(String(own.headers.location)).toMatch(/[?&]_dftk=v1\./);
  });

  it('a cross-site navigation into the redirect carries no identity, even for a pipeline claiming the host', async () => {
    // Linked domains are the pipeline's own say: org B may list site A too. A browser still tells a
    // navigation started by a page of another site (Sec-Fetch-Site: cross-site) from a link on site A.
    const h = await harness();
    h.pipelines.others.push({
      key: OTHER_PIPELINE_KEY,
      ref: OTHER_PIPELINE,
      linked: ['site-a.localhost', 'evil.example'],
    });
    const crossSite = { 'sec-fetch-site': 'cross-site' };
    const attack = await redirectOnSiteA(h, 'https://evil.example/c', OTHER_PIPELINE_KEY, crossSite);
    expect(attack.status).toBe(302);
    expect(attack.headers.location).toBe('https://evil.example/c');
    const ownCrossSite = await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY, crossSite);
    expect(ownCrossSite.headers.location).toBe('https://site-b.localhost/');
    expect(await refusalCount(h, 'cross_site')).toBe(2);
    // Nor one no page started (an emailed, pasted or QR-coded link naming org B's key): Datafly.js sends
    // visitors through only from a click on a linked page.
    const mailed = await redirectOnSiteA(h, 'https://evil.example/c', OTHER_PIPELINE_KEY, {
      'sec-fetch-site': 'none',
    });
    expect(mailed.headers.location).toBe('https://evil.example/c');
    expect(await refusalCount(h, 'no_initiator')).toBe(1);
    // A link on site A (same site as its data host) carries it as before.
    for (const site of ['same-origin', 'same-site']) {
      const reply = await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY, {
        'sec-fetch-site': site,
      });
      expect({ site, carried: /[?&]_dftk=v1\./.test(String(reply.headers.location)) }).toEqual({
        site,
        carried: true,
      });
    }
  });

  it('junk with the public key cannot use up the redirect limit, and one over it still reaches its page', async () => {
    const h = await harness({ rateLimitRps: 2, ipRateLimitRps: 1000 }, { limits: 'clocked' });
    // Requests that would mint nothing (a refused destination, no cookie) do not count against the pipeline.
    for (let i = 0; i < 5; i += 1) {
      expect((await redirectOnSiteA(h, 'https://not-linked.example/', PIPELINE_KEY)).status).toBe(400);
      const bare = await h.server.send({
        method: 'GET',
        path: `/v1/identity/redirect?${new URLSearchParams({ to: 'https://site-b.localhost/', pipelineKey: PIPELINE_KEY })}`,
        host: h.host('site-a.localhost'),
      });
      expect(bare.headers.location).toBe('https://site-b.localhost/');
    }
    const carried = (reply: { headers: Record<string, unknown> }) =>
      /[?&]_dftk=v1\./.test(String(reply.headers.location));
    expect(carried(await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY))).toBe(true);
    expect(carried(await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY))).toBe(true);
    // Over the limit: the visitor still gets where the link pointed, only without a token.
    const over = await redirectOnSiteA(h, 'https://site-b.localhost/', PIPELINE_KEY);
    expect(over.status).toBe(302);
    expect(over.headers.location).toBe('https://site-b.localhost/');
    expect(await refusalCount(h, 'rate_limited_pipeline')).toBe(1);
  });

  it('a token opens only under the pipeline it was issued for: another pipeline linking the site does not help', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    h.pipelines.others.push({
      key: OTHER_PIPELINE_KEY,
      ref: OTHER_PIPELINE,
      linked: ['site-b.localhost', 'evil.example'],
    });
    // On a site only the other pipeline links: sealed for site B's audience, it does not open there.
    expect((await resolveOn(h, 'evil.example', token)).status).toBe(400);
    expect(await rejections(h, 'commitment_mismatch')).toBe(1);
    // Once its own pipeline unlinks site B, the other pipeline still linking it does not keep it valid.
    h.pipelines.linked = ['site-a.localhost'];
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(400);
    expect(await rejections(h, 'audience_not_linked')).toBe(1);
  });

  it("a page of another org's pipeline cannot redeem a token into its site (X-Pipeline-Key on resolve)", async () => {
    // Linked domains are not verified: the demo org lists site B, which is org B's site running org B's
    // Datafly.js. A token minted by the demo org (for any `_dfid` it chooses) and planted in a link to
    // site B would set org B's visitor's `_dfid` to an id the demo org knows.
    const h = await harness();
    h.pipelines.others.push(
      { key: OTHER_PIPELINE_KEY, ref: OTHER_PIPELINE, linked: ['site-b.localhost'] },
      {
        key: 'dk_test_sameorgsameorgsameorg1',
        ref: { orgId: 'org_demo', pipelineId: 'pl_demo_b' },
        linked: ['site-b.localhost', 'site-a.localhost'],
      },
    );
    const token = await tokenFor(h, `http://site-b.localhost:${h.server.port}/`);
    for (const key of [OTHER_PIPELINE_KEY, 'dk_test_unknownunknownunknown', 'not-a-key']) {
      const reply = await resolveOn(h, 'site-b.localhost', token, { 'x-pipeline-key': key });
      expect({ key, status: reply.status, body: reply.json() }).toEqual({
        key,
        status: 400,
        body: INVALID_TOKEN_BODY,
      });
      expect(reply.headers['set-cookie']).toBeUndefined();
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect(await rejections(h, 'pipeline_mismatch')).toBe(3);
    // Refused attempts do not use the token up; a pipeline of the issuing org redeems it.
    const sameOrg = await resolveOn(h, 'site-b.localhost', token, {
      'x-pipeline-key': 'dk_test_sameorgsameorgsameorg1',
    });
    expect(sameOrg.status).toBe(200);
    expect(sameOrg.json()).toEqual({ anonymousId: ANONYMOUS_ID });
    // Without the header (Datafly.js before it sent one) resolve works as it always did.
    const plain = await tokenFor(h, `http://site-b.localhost:${h.server.port}/`);
    expect((await resolveOn(h, 'site-b.localhost', plain)).status).toBe(200);
  });

  it('answers 503 when the pipeline of an X-Pipeline-Key on resolve cannot be looked up, without using the token', async () => {
    const h = await harness();
    const token = await tokenFor(h, 'https://site-b.localhost/');
    const byKey = h.pipelines.byKey;
    h.pipelines.byKey = async () => {
      throw new Error('control plane unavailable');
    };
    const reply = await resolveOn(h, 'site-b.localhost', token, { 'x-pipeline-key': PIPELINE_KEY });
    expect(reply.status).toBe(503);
    expect(reply.headers['set-cookie']).toBeUndefined();
    h.pipelines.byKey = byKey;
    expect((await resolveOn(h, 'site-b.localhost', token, { 'x-pipeline-key': PIPELINE_KEY })).status).toBe(
      200,
    );
  });
});

describe('rate limits', () => {
  function redirectFrom(h: Harness, anonymous: string, headers: Record<string, string> = {}) {
    const query = new URLSearchParams({ to: 'https://site-b.localhost/', pipelineKey: PIPELINE_KEY });
    return h.server.send({
      method: 'GET',
      path: `/v1/identity/redirect?${query}`,
      host: h.host('site-a.localhost'),
      headers: { cookie: `_dfid=${anonymous}`, ...headers },
    });
  }

  /** What the review's flood did per iteration: mint a token through the redirect, redeem it. */
  async function mintAndRedeem(h: Harness, anonymous: string, headers: Record<string, string> = {}) {
    const minted = await redirectFrom(h, anonymous, headers);
    const location = minted.headers.location;
    const token = location === undefined ? null : new URL(String(location)).searchParams.get('_dftk');
    return { minted, resolved: await resolveOn(h, 'site-b.localhost', token, headers) };
  }

  async function refusalCount(h: Harness, endpoint: string, reason: string): Promise<number> {
    const text = await h.metrics.metrics();
    const match = new RegExp(
      `signal_identity_request_refusals_total\\{endpoint="${endpoint}",reason="${reason}"\\} (\\d+)`,
    ).exec(text);
    return Number(match?.[1] ?? 0);
  }

  it('a redemption flood cannot fill the shared cache: visitors and the gateway’s replay markers keep working', async () => {
    // The all-in-one shares one in-process store between the hub, the gateway and the processor; bounded
    // here at 300 entries so the flood stays cheap (the default 100 000 filled in ~8 s over HTTP).
    const h = await harness({}, { limits: 'clocked', maxEntries: 300 });
    const gateway = createMemoryCache({ namespace: 'gateway', store: h.store });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const { resolved } = await mintAndRedeem(h, randomUUID());
      statuses.set(resolved.status, (statuses.get(resolved.status) ?? 0) + 1);
    }
    // Within one window, one client gets IDENTITY_RATE_LIMIT_PER_IP_RPS (20) tokens and redemptions.
    expect(statuses.get(200)).toBe(20);
    expect(statuses.get(503)).toBeUndefined();

    h.clock.now += 1_000;
    const visitor = await mintAndRedeem(h, ANONYMOUS_ID);
    expect(visitor.resolved.status).toBe(200);
    expect(visitor.resolved.json()).toEqual({ anonymousId: ANONYMOUS_ID });
    expect(await gateway.setIfAbsent('sig:seen:abc', '1', 300_000)).toBe(true);
    await gateway.close();
  });

  it('answers 429 with Retry-After and the standard error body on every endpoint, per client', async () => {
    const h = await harness({ ipRateLimitRps: 2 }, { limits: 'clocked' });
    const to = 'https://site-b.localhost/';
    const token = await tokenFor(h, to);
    expect((await issue(h, to)).status).toBe(200);
    const overToken = await issue(h, to);
    const overRedirect = await (async () => {
      await redirectFrom(h, ANONYMOUS_ID);
      await redirectFrom(h, ANONYMOUS_ID);
      return redirectFrom(h, ANONYMOUS_ID);
    })();
    expect((await resolveOn(h, 'site-b.localhost', 'garbage')).status).toBe(400);
    expect((await resolveOn(h, 'site-b.localhost', 'garbage')).status).toBe(400);
    const overResolve = await resolveOn(h, 'site-b.localhost', token);
    for (const [endpoint, reply] of [
      ['token', overToken],
      ['redirect', overRedirect],
      ['resolve', overResolve],
    ] as const) {
      expect({ endpoint, status: reply.status, retryAfter: reply.headers['retry-after'] }).toEqual({
        endpoint,
        status: 429,
        retryAfter: '1',
      });
      expect(reply.json()).toEqual({
        error: {
          code: 'rate_limited',
          message: 'more than 2 requests per second from this address, retry shortly',
        },
      });
      expect(reply.headers.location).toBeUndefined();
      expect(reply.headers['set-cookie']).toBeUndefined();
      expect(await refusalCount(h, endpoint, 'rate_limited_client')).toBe(1);
    }
    // The limited resolve did not use the token up: it redeems once the window has passed.
    h.clock.now += 1_000;
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(200);
  });

  it('tells clients apart by X-Forwarded-For only behind trusted proxies (TRUSTED_PROXY_HOPS, _CIDRS)', async () => {
    const behindProxy = await harness({ ipRateLimitRps: 1, trustedProxyHops: 1 }, { limits: 'clocked' });
    const from = (ip: string) => ({ 'x-forwarded-for': `198.51.100.250, ${ip}` });
    expect((await mintAndRedeem(behindProxy, randomUUID(), from('203.0.113.1'))).resolved.status).toBe(200);
    expect((await mintAndRedeem(behindProxy, randomUUID(), from('203.0.113.1'))).minted.status).toBe(429);
    expect((await mintAndRedeem(behindProxy, randomUUID(), from('203.0.113.2'))).resolved.status).toBe(200);

    // Without trusted proxies the header is the client's own writing: changing it buys no new budget.
    const direct = await harness({ ipRateLimitRps: 1 }, { limits: 'clocked' });
    expect((await mintAndRedeem(direct, randomUUID(), from('203.0.113.1'))).resolved.status).toBe(200);
    expect((await mintAndRedeem(direct, randomUUID(), from('203.0.113.2'))).minted.status).toBe(429);

    // TRUSTED_PROXY_CIDRS: the header counts only from a listed proxy. The test client (127.0.0.1) is one in
    // the first hub, and a client that reached the pod past the ingress in the second.
    const listed = await harness(
      { ipRateLimitRps: 1, trustedProxyHops: 1, trustedProxyCidrs: ['127.0.0.0/8'] },
      { limits: 'clocked' },
    );
    expect((await mintAndRedeem(listed, randomUUID(), from('203.0.113.1'))).resolved.status).toBe(200);
    expect((await mintAndRedeem(listed, randomUUID(), from('203.0.113.2'))).resolved.status).toBe(200);
    const pastTheIngress = await harness(
      { ipRateLimitRps: 1, trustedProxyHops: 1, trustedProxyCidrs: ['10.0.0.0/8'] },
      { limits: 'clocked' },
    );
    expect((await mintAndRedeem(pastTheIngress, randomUUID(), from('203.0.113.1'))).resolved.status).toBe(
      200,
    );
    expect((await mintAndRedeem(pastTheIngress, randomUUID(), from('203.0.113.2'))).minted.status).toBe(429);
  });

  it('limits each pipeline across all clients, with CORS so the page can read the 429', async () => {
    const h = await harness(
      { rateLimitRps: 2, ipRateLimitRps: 1000, trustedProxyHops: 1 },
      { limits: 'clocked' },
    );
    const to = 'https://site-b.localhost/';
    const from = (n: number) => ({ 'x-forwarded-for': `203.0.113.${n}` });
    const tokens = [
      (await issue(h, to, from(1))).json() as { token: string },
      (await issue(h, to, from(2))).json() as { token: string },
    ];
    const over = await issue(h, to, from(3));
    expect(over.status).toBe(429);
    expect(over.json()).toMatchObject({
      error: {
        code: 'rate_limited',
        message: 'more than 2 requests per second for this pipeline, retry shortly',
      },
    });
    expect(over.headers['access-control-allow-origin']).toBe(h.origin('site-a.localhost'));
    expect(await refusalCount(h, 'token', 'rate_limited_pipeline')).toBe(1);

    // Resolve counts on its own budget, by the pipeline in the token's (authenticated) claims.
    for (const [i, { token }] of tokens.entries()) {
      expect((await resolveOn(h, 'site-b.localhost', token, from(10 + i))).status).toBe(200);
    }
    h.clock.now += 1_000;
    const another = ((await issue(h, to, from(4))).json() as { token: string }).token;
    h.clock.now -= 1_000;
    const limited = await resolveOn(h, 'site-b.localhost', another, from(20));
    expect(limited.status).toBe(429);
    expect(limited.headers['access-control-allow-origin']).toBe(h.origin('site-b.localhost'));
    expect(await refusalCount(h, 'resolve', 'rate_limited_pipeline')).toBe(1);
    h.clock.now += 1_000;
    expect((await resolveOn(h, 'site-b.localhost', another, from(21))).status).toBe(200);
  });

  it('lets requests through when the counters cannot be reached (fail open), counted and logged', async () => {
    const down: Pick<Cache, 'incrementWindow'> = {
      incrementWindow: async () => {
        throw new Error('connection refused');
      },
    };
    const h = await harness({}, { limits: down });
    const token = await tokenFor(h, 'https://site-b.localhost/');
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(200);
    // The single-use check stays fail-closed on its own: a replay is still refused.
    expect((await resolveOn(h, 'site-b.localhost', token)).status).toBe(400);
    const text = await h.metrics.metrics();
    expect(text).toContain('signal_identity_rate_limit_errors_total{scope="client"} 3');
    expect(text).toContain('signal_identity_rate_limit_errors_total{scope="pipeline"} 3');
    expect(h.logger.entries.some((e) => e.msg === 'rate limiter unavailable; admitting the request')).toBe(
      true,
    );
  });
});
