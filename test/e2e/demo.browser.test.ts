import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type CanonicalEvent, canonicalEventSchema, topics } from '@signal/events';
import { createDatabase } from '@signal/store';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { launchChromium, visitorContext, waitFor } from '../support/browser';
import { developmentCrypto, readTopicMessages } from '../support/bus-segments';
import { type RunningSignal, startSignal } from '../support/signal-process';

/**
 * The embedded demo shop driven in a real Chromium: consent banner, the four buttons, the `_dfid` cookie,
 * delivery to the local HTTPS vendor sink with the email hashed, and the events durably on the embedded
 * bus (read back from the PGlite data directory after a graceful stop).
 */

const NAMESPACE = 'e2edemo';
const EMAIL = 'Jane.Doe@Example.com';
const EMAIL_SHA256 = createHash('sha256').update('jane.doe@example.com').digest('hex');

const statsSchema = z.object({
  received: z.number(),
  delivered: z.number(),
  retried: z.number(),
  failed: z.number(),
  sink: z.number(),
  last: z.unknown(),
});
type Stats = z.infer<typeof statsSchema>;

/** The generic webhook receives the canonical event; the Meta stand-in receives `{data: [...]}`. */
const webhookBody = z.looseObject({
  type: z.string(),
  event: z.string().optional(),
  anonymousId: z.string().optional(),
  userId: z.string().optional(),
  traits: z.record(z.string(), z.unknown()).optional(),
  context: z.looseObject({
    consent: z.looseObject({ categories: z.record(z.string(), z.boolean()).optional() }),
  }),
});
const metaBody = z.looseObject({ data: z.array(z.looseObject({ event_name: z.string() })) });

/** A body the sink received, in either form, naming the event (`page` for page views). */
function sinkEventNames(body: unknown): string[] {
  const webhook = webhookBody.safeParse(body);
  if (webhook.success)
    return [webhook.data.type === 'page' ? 'page' : (webhook.data.event ?? webhook.data.type)];
  const meta = metaBody.safeParse(body);
  return meta.success ? meta.data.data.map((e) => META_NAMES[e.event_name] ?? e.event_name) : [];
}
const META_NAMES: Record<string, string> = {
  PageView: 'page',
  AddToCart: 'add_to_cart',
  Purchase: 'purchase',
};

/**
 * Watches `/demo/stats`, which shows only the last body the sink received, often enough to see most of
 * them, keeping every distinct body. The webhook and the Meta stand-in receive each event at nearly the
 * same moment, so a wait accepts either form; identify goes to the webhook alone.
 */
function watchSink(baseUrl: string) {
  const bodies = new Map<string, unknown>();
  let latest: Stats | undefined;
  let running = true;
  const done = (async () => {
    while (running) {
      const stats = statsSchema.parse(await (await fetch(`${baseUrl}/demo/stats`)).json());
      latest = stats;
      if (stats.last !== null) bodies.set(JSON.stringify(stats.last), stats.last);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    bodies: () => [...bodies.values()],
    stats: () => latest,
    webhookEvents: () =>
      [...bodies.values()].flatMap((b) => {
        const parsed = webhookBody.safeParse(b);
        return parsed.success ? [parsed.data] : [];
      }),
    /** Waits until the sink showed `name` (in either form), then until it has been quiet for 400 ms. */
    async delivered(name: string): Promise<void> {
      await waitFor(`the sink to receive ${name}`, () =>
        [...bodies.values()].some((b) => sinkEventNames(b).includes(name)) ? true : undefined,
      );
      let count = latest?.sink;
      let quietSince = Date.now();
      await waitFor(`the sink to settle after ${name}`, () => {
        if (latest?.sink !== count) {
          count = latest?.sink;
          quietSince = Date.now();
        }
        return Date.now() - quietSince >= 400 ? true : undefined;
      });
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

async function anonymousIdCookie(context: BrowserContext, url: string) {
  return (await context.cookies(url)).find((c) => c.name === '_dfid');
}

async function reloadAndSend(page: Page): Promise<void> {
  const batch = page.waitForResponse((r) => r.url().endsWith('/v1/batch') && r.status() === 202);
  await page.reload();
  await batch;
}

describe('the demo shop in a real browser (Ingestion Gateway end to end)', () => {
  let dataDir: string;
  let signal: RunningSignal;
  let browser: Browser;
  let stopped = false;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'signal-e2e-demo-'));
    [signal, browser] = await Promise.all([
      startSignal({ SIGNAL_NAMESPACE: NAMESPACE }, { dataDir }),
      launchChromium(),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    if (signal && !stopped) await signal.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves d.js under 8 KB gzipped', async () => {
    const res = await fetch(`${signal.baseUrl}/d.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    const code = Buffer.from(await res.arrayBuffer());
    expect(code.length).toBeGreaterThan(1000);
    expect(gzipSync(code, { level: 9 }).length).toBeLessThan(8 * 1024);
  });

  it('collects the shop’s events under the HttpOnly _dfid, delivers them with the email hashed, and keeps them durably', async () => {
    const context = await visitorContext(browser);
    const page = await context.newPage();
    const sink = watchSink(signal.baseUrl);
    let visitorId: string;
    try {
      const firstBatch = page.waitForResponse((r) => r.url().endsWith('/v1/batch'));
      await page.goto(`${signal.baseUrl}/demo`);
      await expect.poll(() => page.isVisible('#banner')).toBe(true);
      await page.click('#consent-all');
      expect(await page.isVisible('#banner')).toBe(false);
      expect((await firstBatch).status()).toBe(202);

      // The gateway's first-party cookie: HttpOnly, Secure (http://localhost is a secure context), Lax.
      const cookie = await waitFor('the _dfid cookie', () => anonymousIdCookie(context, signal.baseUrl));
      expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });
      expect(cookie.expires * 1000 - Date.now()).toBeGreaterThan(399 * 24 * 3600 * 1000);
      visitorId = cookie.value;
      expect(await page.evaluate(() => document.cookie)).not.toContain('_dfid');
      // The SDK's own id was adopted by the gateway, so both agree.
      expect(
        await page.evaluate(() =>
          (window as unknown as { _df: { anonymousId(): string } })._df.anonymousId(),
        ),
      ).toBe(visitorId);

      await page.click('#btn-page');
      await sink.delivered('page');
      await page.click('#btn-track');
      await sink.delivered('add_to_cart');
      await page.click('#btn-identify');
      await sink.delivered('identify');
      await page.click('#btn-purchase');
      await sink.delivered('purchase');

      const stats = sink.stats();
      expect(stats?.received).toBeGreaterThanOrEqual(4);
      expect(stats?.sink).toBeGreaterThanOrEqual(4);
      expect(stats?.failed).toBe(0);
      // The last body the vendor sink received is the purchase (webhook or Meta form, whichever came last).
      expect(sinkEventNames(stats?.last)).toEqual(['purchase']);
      // ...shown only on this machine: asked through another interface, the counts come without the body.
      const external = Object.values(networkInterfaces())
        .flat()
        .find((i) => i !== undefined && !i.internal && i.family === 'IPv4');
      if (external !== undefined) {
        const port = new URL(signal.baseUrl).port;
        const remote = statsSchema.parse(
          await (await fetch(`http://${external.address}:${port}/demo/stats`)).json(),
        );
        expect(remote.sink).toBeGreaterThanOrEqual(4);
        expect(remote.last).toBeNull();
      }

      // The email left Signal only as the SHA-256 of its normalised form, in no body the sink showed.
      const identify = sink.webhookEvents().find((e) => e.type === 'identify');
      expect(identify).toMatchObject({ userId: 'demo-user-1', anonymousId: visitorId });
      expect(identify?.context.consent.categories?.marketing).toBe(true);
      expect(identify?.traits?.email).toBe(EMAIL_SHA256);
      for (const body of sink.bodies()) {
        expect(JSON.stringify(body).toLowerCase()).not.toContain(EMAIL.toLowerCase());
      }

      // Stable across reloads: the cookie is sent back and re-set to the same id.
      for (let i = 0; i < 2; i += 1) {
        await reloadAndSend(page);
        expect((await anonymousIdCookie(context, signal.baseUrl))?.value).toBe(visitorId);
        expect(await page.evaluate(() => document.cookie)).not.toContain('_dfid');
      }
    } finally {
      await sink.stop();
      await context.close();
    }

    // Durable: after a graceful stop, the raw events are in the data directory's bus tables.
    stopped = true;
    expect(await signal.stop('SIGTERM')).toBe(0);
    const db = await createDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pglite') });
    let events: CanonicalEvent[];
    try {
      // The all-in-one generated its development key into the data directory (no ENCRYPTION_KEY given).
      const { messages, rawSegments } = await readTopicMessages(
        db,
        topics.rawEvents(NAMESPACE).name,
        developmentCrypto(dataDir),
      );
      // Sealed at rest: the raw events carry the email in clear (the processor hashes it), the rows do not.
      expect(rawSegments.length).toBeGreaterThan(0);
      expect(messages.some((m) => m.value.toLowerCase().includes('jane.doe'))).toBe(true);
      // latin1: one character per stored byte, so this searches the bytes case-insensitively.
      for (const stored of rawSegments)
        expect(stored.toString('latin1').toLowerCase()).not.toContain('jane.doe');
      events = messages.map((m) => canonicalEventSchema.parse(JSON.parse(m.value)));
      // Keyed by visitor, so one visitor's events stay in order on one partition.
      for (const [i, m] of messages.entries()) expect(m.key).toBe(events[i]?.anonymousId);
    } finally {
      await db.close();
    }
    const mine = events.filter((e) => e.anonymousId === visitorId);
    expect(mine).toHaveLength(events.length);
    const consented = mine.filter((e) => e.context.consent.categories?.marketing === true);
    // Distinct by messageId: a browser may resend a batch whose acknowledgement it lost (at least once).
    const find = (match: (e: CanonicalEvent) => boolean) => [
      ...new Map(consented.filter(match).map((e) => [e.messageId, e])).values(),
    ];
    expect(find((e) => e.type === 'page')).not.toHaveLength(0);
    expect(find((e) => e.type === 'track' && e.event === 'add_to_cart')).toHaveLength(1);
    expect(find((e) => e.type === 'track' && e.event === 'purchase')).toHaveLength(1);
    const identified = find((e) => e.type === 'identify');
    expect(identified).toHaveLength(1);
    expect(identified[0]?.userId).toBe('demo-user-1');
    // Two reloads: two more page views, still under the same id.
    expect(mine.filter((e) => e.type === 'page').length).toBeGreaterThanOrEqual(4);
  }, 60_000);
});
