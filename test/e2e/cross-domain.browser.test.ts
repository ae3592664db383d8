import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { launchChromium, metricValue, visitorContext, waitFor } from '../support/browser';
import { type RunningSignal, startSignal } from '../support/signal-process';

/**
 * The Identity Hub's redirect flow in a real Chromium, across two sites on two host names: a visitor on
 * site A clicks a link to site B and arrives there with the same first-party `_dfid`, carried by a
 * single-use token that never stays in B's address bar and cannot be redeemed twice.
 *
 * The demo pipeline's linked domains are `site-a.localhost` and `site-b.localhost`; Chromium resolves
 * `*.localhost` to loopback and treats it as a secure context, so the Secure cookie works over plain HTTP.
 * Each site is served by a tiny HTTP server of this test and loads Datafly.js from "its own" data host —
 * `site-a.localhost:<signal>` and `site-b.localhost:<signal>`, both the all-in-one — so the gateway and the
 * hub set `_dfid` first-party on each site (cookies are per host, not per port).
 */

const resolveBody = z.object({ anonymousId: z.string() });

function sitePage(options: {
  title: string;
  dataHost: string;
  pipelineKey: string;
  linkedDomains: readonly string[];
  link: { id: string; href: string };
}): string {
  const init = JSON.stringify([
    ['init', { pipelineKey: options.pipelineKey, crossDomain: { linkedDomains: options.linkedDomains } }],
  ]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${options.title}</title>
<script>window._df = ${init};</script>
<script src="${options.dataHost}/d.js" async></script>
</head><body><h1>${options.title}</h1><a id="${options.link.id}" href="${options.link.href}">next</a></body></html>`;
}

/** One server for both sites, routed by the Host header (the port is shared, the host names differ). */
async function serveSites(pages: (host: string, path: string) => string | undefined): Promise<Server> {
  const server = createServer((req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const html = pages(host, path);
    if (html === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
  return server;
}

async function dfid(context: BrowserContext, url: string): Promise<string | undefined> {
  return (await context.cookies(url)).find((c) => c.name === '_dfid')?.value;
}

function sdkAnonymousId(page: Page): Promise<string | undefined> {
  return page.evaluate(() =>
    (window as unknown as { _df: { anonymousId(): string | undefined } })._df.anonymousId(),
  );
}

function isResolve(r: Response): boolean {
  return r.url().endsWith('/v1/identity/resolve') && r.request().method() === 'POST';
}

describe('cross-domain identity in a real browser (Identity Hub redirect flow)', () => {
  let dataDir: string;
  let signal: RunningSignal;
  let browser: Browser;
  let sites: Server;
  let siteA: string;
  let siteB: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'signal-e2e-xdomain-'));
    [signal, browser] = await Promise.all([startSignal({}, { dataDir }), launchChromium()]);
    const pipelineKey = readFileSync(join(dataDir, 'demo-pipeline-key'), 'utf8').trim();
    const signalPort = new URL(signal.baseUrl).port;
    sites = await serveSites((host, path) => {
      const port = (sites.address() as AddressInfo).port;
      if (host === 'site-a.localhost' && path === '/') {
        return sitePage({
          title: 'Site A',
          dataHost: `http://site-a.localhost:${signalPort}`,
          pipelineKey,
          linkedDomains: ['site-b.localhost'],
          link: { id: 'to-b', href: `http://site-b.localhost:${port}/landing?from=a&x=%20y#top` },
        });
      }
      if (host === 'site-b.localhost' && (path === '/landing' || path === '/next')) {
        return sitePage({
          title: path === '/landing' ? 'Site B' : 'Site B, next page',
          dataHost: `http://site-b.localhost:${signalPort}`,
          pipelineKey,
          linkedDomains: ['site-a.localhost'],
          link: { id: 'next', href: '/next' },
        });
      }
      return undefined;
    });
    const port = (sites.address() as AddressInfo).port;
    siteA = `http://site-a.localhost:${port}`;
    siteB = `http://site-b.localhost:${port}`;
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => sites?.close(resolve));
    if (signal) await signal.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function replayedCount(): Promise<number> {
    const exposition = await (await fetch(`${signal.baseUrl}/metrics`)).text();
    return metricValue(exposition, 'signal_identity_token_rejections_total', { reason: 'replayed' });
  }

  it('carries _dfid from site A to site B once, keeps the token out of B’s address bar and refuses its replay', async () => {
    const context = await visitorContext(browser);
    const other = await visitorContext(browser);
    try {
      const page = await context.newPage();
      const tokenUrls: string[] = [];
      page.on('request', (req) => {
        if (req.isNavigationRequest() && new URL(req.url()).searchParams.has('_dftk'))
          tokenUrls.push(req.url());
      });

      // Site A: the first event makes the gateway set _dfid on site-a.localhost.
      await page.goto(`${siteA}/`);
      const idA = await waitFor('_dfid on site A', () => dfid(context, siteA));
      expect(await sdkAnonymousId(page)).toBe(idA);
      expect(await dfid(context, siteB)).toBeUndefined();

      // The click: token minted for B, the browser lands on B, d.js strips the token and resolves it.
      const resolved = page.waitForResponse(isResolve);
      const firstBatchOnB = page.waitForRequest(
        (r) => r.url().startsWith('http://site-b.localhost:') && r.url().endsWith('/v1/batch'),
      );
      await page.click('#to-b');
      const resolveResponse = await resolved;
      expect(resolveResponse.status()).toBe(200);
      expect(resolveBody.parse(await resolveResponse.json())).toEqual({ anonymousId: idA });

      expect(tokenUrls).toHaveLength(1);
      const tokenUrl = tokenUrls[0] ?? '';
      expect(tokenUrl).toMatch(/^http:\/\/site-b\.localhost:\d+\/landing\?from=a&x=%20y&_dftk=v1\.[\w-]+$/);
      // Removed from the address bar before anything else; other parameters and the fragment kept as they were.
      expect(page.url()).toBe(`${siteB}/landing?from=a&x=%20y#top`);
      expect(await page.evaluate(() => location.href)).not.toContain('_dftk');

      // B now has A's id: in its own first-party cookie (HttpOnly, set by the hub) and in its events.
      const cookieB = (await context.cookies(siteB)).find((c) => c.name === '_dfid');
      expect(cookieB).toMatchObject({ value: idA, domain: 'site-b.localhost', httpOnly: true, secure: true });
      expect(await sdkAnonymousId(page)).toBe(idA);
      const batch = z
        .object({ batch: z.array(z.object({ type: z.string(), anonymousId: z.string() })) })
        .parse((await firstBatchOnB).postDataJSON());
      expect(batch.batch.map((e) => e.anonymousId)).toEqual(batch.batch.map(() => idA));

      // The next page on B sees no token in its referrer, and going back never shows one either.
      await page.click('#next');
      await page.waitForURL(`${siteB}/next`);
      const referrer = await page.evaluate(() => document.referrer);
      expect(referrer).toBe(`${siteB}/landing?from=a&x=%20y`);
      await page.goBack();
      expect(page.url()).toBe(`${siteB}/landing?from=a&x=%20y#top`);
      await page.goBack();
      expect(page.url()).toBe(`${siteA}/`);
      expect(tokenUrls).toHaveLength(1);

      // Replay in the same browser: the hub refuses the used token, B keeps the id it has.
      const before = await replayedCount();
      const replayed = page.waitForResponse(isResolve);
      await page.goto(tokenUrl);
      const replayResponse = await replayed;
      // The one generic refusal (its body is the hub's contract, tested there; the SDK never reads it, and
      // Chromium keeps no body of an unread response for the test to inspect).
      expect(replayResponse.status()).toBe(400);
      expect(page.url()).not.toContain('_dftk');
      expect(await replayedCount()).toBe(before + 1);
      expect(await dfid(context, siteB)).toBe(idA);

      // Replay by another visitor (a leaked URL): refused too, and that visitor never gets A's id.
      const otherPage = await other.newPage();
      const otherResolve = otherPage.waitForResponse(isResolve);
      await otherPage.goto(tokenUrl);
      expect((await otherResolve).status()).toBe(400);
      expect(await replayedCount()).toBe(before + 2);
      const otherId = await waitFor('_dfid for the other visitor', () => dfid(other, siteB));
      expect(otherId).not.toBe(idA);
      expect(await sdkAnonymousId(otherPage)).toBe(otherId);
    } finally {
      await other.close();
      await context.close();
    }
  }, 60_000);
});
