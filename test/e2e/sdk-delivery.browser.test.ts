import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { launchChromium, visitorContext, waitFor } from '../support/browser';
import { type RunningSignal, startSignal } from '../support/signal-process';

/**
 * Datafly.js's promise — every tracked event reaches the gateway at least once, with its `messageId` — in a
 * real Chromium, across gateway outages and page changes. The test's site server serves the pages and passes
 * `/v1/batch` on to the all-in-one's gateway, or, while an outage is on, answers 503 (with Retry-After) or
 * resets the connection. Chromium's `sendBeacon` returns true once it has queued a body, whatever the
 * gateway later answers, so only a fetch the gateway acknowledged may count as delivered.
 */

type Outage = '503' | 'reset';
type Mode = 'up' | Outage;

/** One `/v1/batch` request as the site server saw it, and what became of it. */
interface Attempt {
  readonly via: 'fetch' | 'beacon';
  readonly mode: Mode;
  readonly events: readonly { name: string; messageId: string }[];
  /** The gateway's status when passed on; the outage's answer otherwise. */
  readonly status: number | 'reset';
}

const batchBody = z.object({
  batch: z.array(z.object({ messageId: z.string(), event: z.string().optional(), type: z.string() })),
});

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** The site: `/sdk/<name>` loads Datafly.js (endpoint: the site itself), `/plain` does not. */
function siteServer(options: { pipelineKey: string; signalUrl: string }) {
  const attempts: Attempt[] = [];
  let mode: Mode = 'up';
  let origin = '';

  async function batch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const parsed = batchBody.safeParse(JSON.parse(raw));
    const events = parsed.success
      ? parsed.data.batch.map((e) => ({ name: e.event ?? e.type, messageId: e.messageId }))
      : [];
    // Beacons are the requests that cannot set a JSON content type.
    const via = String(req.headers['content-type']).startsWith('text/plain') ? 'beacon' : 'fetch';
    const at = mode;
    if (at === 'reset') {
      attempts.push({ via, mode: at, events, status: 'reset' });
      req.socket.destroy();
      return;
    }
    if (at === '503') {
      attempts.push({ via, mode: at, events, status: 503 });
      res.writeHead(503, { 'retry-after': '5' }).end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'x-pipeline-key', 'user-agent', 'cookie']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const upstream = await fetch(`${options.signalUrl}/v1/batch`, { method: 'POST', headers, body: raw });
    attempts.push({ via, mode: at, events, status: upstream.status });
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
  }

  function page(name: string): string {
    const init = {
      pipelineKey: options.pipelineKey,
      endpoint: origin,
      autoPage: false,
      // Long: a test sends by flush(), hidden or pagehide, never by the timer.
      flushInterval: 60_000,
    };
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${name}</title>
<script>window._df = ${JSON.stringify([['init', init]])};</script>
<script src="${options.signalUrl}/d.js"></script>
</head><body><h1>${name}</h1></body></html>`;
  }

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/v1/batch' && req.method === 'POST') {
      batch(req, res).catch(() => res.writeHead(502).end());
      return;
    }
    const html = path.startsWith('/sdk/')
      ? page(path.slice(5))
      : path === '/plain'
        ? '<!doctype html><title>plain</title>'
        : undefined;
    if (html === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });

  return {
    server,
    attempts,
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
      origin = `http://localhost:${(server.address() as AddressInfo).port}`;
      return origin;
    },
    setMode(next: Mode): void {
      mode = next;
    },
    /** The message id the gateway acknowledged (2xx) for each event name, in order of acknowledgement. */
    acknowledged(): Map<string, string[]> {
      const out = new Map<string, string[]>();
      for (const a of attempts) {
        if (typeof a.status !== 'number' || a.status < 200 || a.status >= 300) continue;
        for (const e of a.events) out.set(e.name, [...(out.get(e.name) ?? []), e.messageId]);
      }
      return out;
    },
  };
}

function track(page: Page, names: readonly string[]): Promise<void> {
  return page.evaluate((list) => {
    const df = (window as unknown as { _df: { track(name: string): void } })._df;
    for (const name of list) df.track(name);
  }, names);
}

function flush(page: Page): Promise<void> {
  return page.evaluate(() => (window as unknown as { _df: { flush(): Promise<void> } })._df.flush());
}

/** Tells the page the tab went to the background (headless Chromium never hides a page by itself). */
function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
  return page.evaluate((s) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

describe('Datafly.js delivery in a real browser (gateway outages, page changes)', () => {
  let dataDir: string;
  let signal: RunningSignal;
  let browser: Browser;
  let site: ReturnType<typeof siteServer>;
  let origin: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'signal-e2e-sdk-'));
    [signal, browser] = await Promise.all([startSignal({}, { dataDir }), launchChromium()]);
    const pipelineKey = readFileSync(join(dataDir, 'demo-pipeline-key'), 'utf8').trim();
    site = siteServer({ pipelineKey, signalUrl: signal.baseUrl });
    origin = await site.listen();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.server.close(resolve));
    if (signal) await signal.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function withPage(run: (page: Page, context: BrowserContext) => Promise<void>): Promise<void> {
    site.setMode('up');
    const context = await visitorContext(browser);
    try {
      await run(await context.newPage(), context);
    } finally {
      await context.close();
    }
  }

  /** Waits until the gateway acknowledged every name; returns the message ids it acknowledged for them. */
  function delivered(names: readonly string[]): Promise<Map<string, string[]>> {
    return waitFor(
      `the gateway to acknowledge ${names.join(', ')}`,
      () => {
        const acked = site.acknowledged();
        return names.every((n) => acked.has(n)) ? acked : undefined;
      },
      { timeoutMs: 10_000 },
    );
  }

  /** The message id each name was first sent with, by any route. */
  function firstSent(names: readonly string[]): Map<string, string | undefined> {
    const all = site.attempts.flatMap((a) => a.events);
    return new Map(names.map((n) => [n, all.find((e) => e.name === n)?.messageId]));
  }

  it.each<Outage>(['503', 'reset'])(
    'keeps events waiting for a retry (gateway %s) through pagehide and delivers them on a later page',
    async (outage) => {
      const names = [`retry-${outage}-1`, `retry-${outage}-2`];
      await withPage(async (page) => {
        site.setMode(outage);
        await page.goto(`${origin}/sdk/one`);
        await track(page, names);
        await flush(page); // refused: the events now wait for a retry
        await page.goto(`${origin}/plain`);
        // Anything this page's pagehide sent has arrived (and failed) before the gateway comes back.
        await new Promise((resolve) => setTimeout(resolve, 500));
        site.setMode('up');
        await page.goto(`${origin}/sdk/two`);
        const acked = await delivered(names);
        for (const [name, id] of firstSent(names)) expect(acked.get(name)?.[0]).toBe(id);
        if (outage === '503') {
          // A Retry-After was running at pagehide: nothing was beaconed into the outage.
          expect(site.attempts.filter((a) => a.via === 'beacon')).toEqual([]);
        }
      });
    },
    30_000,
  );

  it('sends again what a beacon the browser accepted carried when the beacon failed on the way', async () => {
    const name = 'beacon-503';
    await withPage(async (page) => {
      await page.goto(`${origin}/sdk/one`);
      await track(page, [name]);
      site.setMode('503');
      await page.goto(`${origin}/plain`); // pagehide: the event goes out with sendBeacon
      const beacon = await waitFor('the pagehide beacon', () =>
        site.attempts.find((a) => a.via === 'beacon' && a.events.some((e) => e.name === name)),
      );
      expect(beacon.status).toBe(503);
      site.setMode('up');
      await page.goto(`${origin}/sdk/two`);
      const acked = await delivered([name]);
      expect(acked.get(name)).toEqual([beacon.events[0]?.messageId]);
    });
  }, 30_000);

  it('sends what waits when the tab is hidden, and once only when the tab comes back', async () => {
    const name = 'hidden-once';
    await withPage(async (page) => {
      await page.goto(`${origin}/sdk/one`);
      await track(page, [name]);
      await setVisibility(page, 'hidden');
      await delivered([name]);
      await setVisibility(page, 'visible');
      await page.goto(`${origin}/plain`);
      await page.goto(`${origin}/sdk/two`);
      await flush(page);
      const sent = site.attempts.filter((a) => a.events.some((e) => e.name === name));
      expect(sent.map((a) => [a.via, a.status])).toEqual([['fetch', 202]]);
    });
  }, 30_000);
});
