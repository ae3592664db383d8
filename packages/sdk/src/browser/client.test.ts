// @vitest-environment happy-dom
import { eventInputSchema } from '@signal/events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clearCookies, setCookie } from '../testing/cookies';
import { beaconRecorder, fakeGateway } from '../testing/fake-gateway';
import { createClient, DataflyError } from './client';
import type { DataflyApi, DataflyOptions, EventBody } from './types';
import { VERSION } from './version';

const KEY = 'dk_live_4f9c2a';
const ENDPOINT = 'https://data.shop.example';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const clients: DataflyApi[] = [];
function start(options: Partial<DataflyOptions> = {}): DataflyApi {
  const client = createClient(window, { endpoint: ENDPOINT });
  clients.push(client);
  client.init({ pipelineKey: KEY, autoPage: false, ...options });
  return client;
}

let gateway: ReturnType<typeof fakeGateway>;
beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  history.replaceState(null, '', '/');
  document.title = 'Shop';
  vi.useFakeTimers();
  gateway = fakeGateway();
  vi.stubGlobal('fetch', gateway.fetch);
});

afterEach(() => {
  for (const client of clients.splice(0)) client.shutdown();
  delete (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl;
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

/** Fields Datafly.js sends that `eventInputSchema` does not (yet) carry; anything else stripped is drift. */
const EXTRAS = ['context.timezone', 'context.screen', 'context.consent.cmp'];

function strippedPaths(sent: unknown, parsed: unknown, path = ''): string[] {
  if (typeof sent !== 'object' || sent === null || Array.isArray(sent)) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(sent)) {
    const here = path ? `${path}.${key}` : key;
    const kept = (parsed as Record<string, unknown> | undefined)?.[key];
    if (kept === undefined) out.push(here);
    else if (here !== 'properties' && here !== 'traits') out.push(...strippedPaths(value, kept, here));
  }
  return out;
}

describe('event body contract', () => {
  it('sends events the gateway schema accepts, with the documented context', async () => {
    history.replaceState(null, '', '/checkout/done?order=1001&gclid=Cj0KCQ');
    vi.setSystemTime(new Date('2026-03-01T12:00:00.000Z'));
    const df = start();
    df.consent({ analytics: true, marketing: false });
    df.identify('user-42', { plan: 'pro' });
    df.group('acme', { seats: 12 });
    df.page({ name: 'Order confirmation' });
    df.track('purchase', {
      transaction_id: 'T-1001',
      value: 59.9,
      currency: 'EUR',
      items: [{ item_id: 'SKU-1', item_name: 'Shoe', price: 29.95, quantity: 2 }],
    });
    await df.flush();

    const events = gateway.events();
    expect(events.map((e) => [e.type, e.event])).toEqual([
      ['track', 'consent_update'],
      ['identify', undefined],
      ['group', undefined],
      ['page', 'Order confirmation'],
      ['track', 'purchase'],
    ]);
    for (const sent of events) {
      const parsed = eventInputSchema.safeParse(sent);
      expect(parsed.error?.issues ?? []).toEqual([]);
      expect(strippedPaths(sent, parsed.data).filter((p) => !EXTRAS.includes(p))).toEqual([]);
    }

    const purchase = events[4] as EventBody;
    expect(purchase.messageId).toMatch(UUID_V4);
    expect(new Set(events.map((e) => e.messageId)).size).toBe(5);
    expect(new Set(events.map((e) => e.anonymousId)).size).toBe(1);
    expect(purchase.anonymousId).toBe(df.anonymousId());
    expect(purchase.userId).toBe('user-42');
    expect(purchase.timestamp).toBe('2026-03-01T12:00:00.000Z');
    expect(purchase.properties).toEqual({
      transaction_id: 'T-1001',
      value: 59.9,
      currency: 'EUR',
      items: [{ item_id: 'SKU-1', item_name: 'Shoe', price: 29.95, quantity: 2 }],
    });
    expect(purchase.context).toMatchObject({
      userAgent: navigator.userAgent,
      locale: navigator.language,
      page: {
        url: 'http://localhost:3000/checkout/done?order=1001&gclid=Cj0KCQ',
        path: '/checkout/done',
        search: '?order=1001&gclid=Cj0KCQ',
        title: 'Shop',
      },
      consent: { categories: { analytics: true, marketing: false }, cmp: 'api' },
      library: { name: 'datafly.js', version: VERSION },
      clickIds: { gclid: 'Cj0KCQ' },
    });
    expect(typeof purchase.context.timezone).toBe('string');
    expect(purchase.context.screen?.width).toBeGreaterThan(0);
    expect(events[1]?.traits).toEqual({ plan: 'pro' });
    expect(events[2]).toMatchObject({ groupId: 'acme', traits: { seats: 12 } });
    expect(events[3]?.properties).toMatchObject({
      name: 'Order confirmation',
      path: '/checkout/done',
      title: 'Shop',
    });
    expect(events[0]?.properties).toEqual({ categories: { analytics: true, marketing: false } });
  });

  it('sends page views automatically once init has run (autoPage)', async () => {
    const df = start({ autoPage: true });
    await df.flush();
    expect(gateway.events().map((e) => e.type)).toEqual(['page']);
  });

  it('uses the time of the call for calls made before init, and runs them before the automatic page view', async () => {
    vi.setSystemTime(new Date('2026-03-01T12:00:00.000Z'));
    const df = createClient(window, { endpoint: ENDPOINT });
    clients.push(df);
    df.track('early');
    vi.setSystemTime(new Date('2026-03-01T12:00:05.000Z'));
    df.init({ pipelineKey: KEY });
    await df.flush();
    expect(gateway.events().map((e) => [e.type, e.timestamp])).toEqual([
      ['track', '2026-03-01T12:00:00.000Z'],
      ['page', '2026-03-01T12:00:05.000Z'],
    ]);
  });

  it('never throws from a tracking call: bad input is dropped with a warning', async () => {
    const warn = vi.fn();
    const df = start({ logger: { warn } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => {
      df.track('');
      df.track(42 as unknown as string);
      df.group('');
      df.identify({ id: 1 } as unknown as string);
      df.track('cyclic', cyclic);
      df.push(['nonsense']);
      df.push('not a call');
    }).not.toThrow();
    df.track('ok', 'not an object' as unknown as Record<string, unknown>);
    await df.flush();
    expect(gateway.events().map((e) => [e.event, e.properties])).toEqual([['ok', {}]]);
    expect(warn).toHaveBeenCalledTimes(6);
  });
});

describe('identity', () => {
  it('keeps the anonymous and user ids across a reload and forgets them on reset()', async () => {
    const first = start();
    first.identify('user-1');
    first.shutdown();
    const anonymousId = first.anonymousId();

    const second = start();
    expect(second.anonymousId()).toBe(anonymousId);
    second.track('after reload');
    second.reset();
    second.track('after reset');
    await second.flush();
    const [before, after] = gateway.events();
    expect(before).toMatchObject({ anonymousId, userId: 'user-1' });
    expect(after?.userId).toBeUndefined();
    expect(after?.anonymousId).not.toBe(anonymousId);
    expect(after?.anonymousId).toMatch(UUID_V4);
  });

  it('generates a v4 anonymous id without crypto.randomUUID (plain-HTTP pages)', () => {
    const original = crypto.randomUUID;
    Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
    try {
      expect(start().anonymousId()).toMatch(UUID_V4);
    } finally {
      Object.defineProperty(crypto, 'randomUUID', { value: original, configurable: true });
    }
  });

  it('remembers landing click ids for the session; reset() forgets them', async () => {
    history.replaceState(null, '', '/?fbclid=IwAR1&ttclid=E.C.P');
    const df = start();
    history.replaceState(null, '', '/next');
    df.track('later');
    df.reset();
    df.track('after reset');
    await df.flush();
    const [later, afterReset] = gateway.events();
    expect(later?.context.clickIds).toEqual({ fbclid: 'IwAR1', ttclid: 'E.C.P' });
    expect(later?.context.page.url).toBe('http://localhost:3000/next');
    expect(afterReset?.context.clickIds).toBeUndefined();
  });
});

describe('consent', () => {
  it('keeps explicit choices across reloads and merges later updates', async () => {
    start().consent({ analytics: true });
    const df = start();
    df.consent({ marketing: true });
    df.track('x');
    await df.flush();
    const events = gateway.events();
    expect(events.at(-1)?.context.consent.categories).toEqual({ analytics: true, marketing: true });
    expect(events.at(-2)?.properties).toEqual({ categories: { analytics: true, marketing: true } });
  });

  it('a withdrawal in the CMP after consent() reaches later events, also after a reload', async () => {
    setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0004%3A1');
    try {
      start().consent({ marketing: true });
      setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0004%3A0');
      const df = start();
      df.track('after_withdrawal');
      await df.flush();
      expect(gateway.events().at(-1)?.context.consent.categories).toMatchObject({ marketing: false });
      // A later consent() call about another category does not bring the overruled grant back.
      df.consent({ analytics: true });
      df.track('later');
      await df.flush();
      expect(gateway.events().at(-1)?.context.consent.categories).toMatchObject({
        analytics: true,
        marketing: false,
      });
    } finally {
      clearCookies();
    }
  });

  it('waitForConsent: holds the first page view until the banner is answered, then sends it with that answer', async () => {
    const df = start({ autoPage: true, waitForConsent: 5_000 });
    df.track('clicked before the answer');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(gateway.requests).toHaveLength(0);
    df.consent({ analytics: true, marketing: true });
    await df.flush();
    const events = gateway.events();
    expect(events.map((e) => e.event ?? e.type)).toEqual([
      'page',
      'clicked before the answer',
      'consent_update',
    ]);
    for (const e of events)
      expect(e.context.consent.categories).toEqual({ analytics: true, marketing: true });
    // Each keeps the time it happened at.
    expect(Date.parse(events[0]?.timestamp ?? '')).toBeLessThan(Date.parse(events[2]?.timestamp ?? ''));
  });

  it('waitForConsent: a CMP cookie that appears ends the wait; without any answer the events go at the limit', async () => {
    try {
      const df = start({ waitForConsent: 5_000 });
      df.track('waits for the CMP');
      await vi.advanceTimersByTimeAsync(1_000);
      setCookie('OptanonConsent', 'groups=C0001%3A1%2CC0002%3A1%2CC0004%3A0');
      await vi.advanceTimersByTimeAsync(200);
      await df.flush();
      expect(gateway.events().at(-1)?.context.consent).toMatchObject({
        categories: { analytics: true, marketing: false },
        cmp: 'onetrust',
      });
      df.shutdown();
      clearCookies();
      localStorage.clear();
      const silent = start({ waitForConsent: 3_000 });
      silent.track('nobody answers');
      await vi.advanceTimersByTimeAsync(2_900);
      expect(gateway.events().map((e) => e.event)).toEqual(['waits for the CMP']);
      await vi.advanceTimersByTimeAsync(200);
      await silent.flush();
      expect(gateway.events().at(-1)).toMatchObject({ event: 'nobody answers' });
      expect(gateway.events().at(-1)?.context.consent.categories).toBeUndefined();
    } finally {
      clearCookies();
    }
  });

  it('waitForConsent: a known choice (a returning visitor) sends at once, and leaving the page sends what waits', async () => {
    const first = start();
    first.consent({ analytics: true });
    await first.flush();
    first.shutdown();
    const returning = start({ waitForConsent: 5_000 });
    returning.track('returning');
    await returning.flush();
    expect(gateway.events().at(-1)).toMatchObject({ event: 'returning' });
    returning.shutdown();

    localStorage.clear();
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const leaving = start({ waitForConsent: 5_000 });
    leaving.track('left before answering');
    window.dispatchEvent(new Event('pagehide'));
    expect(beacons.calls).toHaveLength(1);
    const body = JSON.parse((await beacons.calls[0]?.body) ?? '');
    expect(body.batch.map((e: EventBody) => e.event)).toEqual(['left before answering']);
  });

  it('collects nothing, and stores nothing, under Do Not Track when asked to honour it', async () => {
    vi.spyOn(navigator, 'doNotTrack', 'get').mockReturnValue('1');
    const df = start({ respectDoNotTrack: true, autoPage: true });
    df.track('x');
    df.identify('u');
    await df.flush();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(gateway.requests).toHaveLength(0);
    expect(localStorage.length).toBe(0);
    expect(df.anonymousId()).toBeUndefined();
  });

  it('collects nothing under GPC when asked to honour it, and forwards GPC otherwise', async () => {
    Object.defineProperty(navigator, 'globalPrivacyControl', { value: true, configurable: true });
    const honouring = start({ respectGpc: true });
    honouring.track('x');
    await honouring.flush();
    expect(gateway.requests).toHaveLength(0);
    honouring.shutdown();

    const forwarding = start();
    forwarding.track('y');
    await forwarding.flush();
    expect(gateway.events().map((e) => [e.event, e.context.consent.gpc])).toEqual([['y', true]]);
  });
});

describe('page lifecycle', () => {
  function hide(): void {
    const visibility = vi.spyOn(document, 'visibilityState', 'get').mockReturnValue('hidden');
    document.dispatchEvent(new Event('visibilitychange'));
    visibility.mockRestore();
  }

  it('on visibilitychange to hidden, sends what waits at once with a keepalive fetch, so nothing is sent twice', async () => {
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const df = start();
    df.track('before hidden');
    hide();
    // Started in the handler itself: a page frozen right after still has its request on the way.
    expect(gateway.requests).toHaveLength(1);
    expect(gateway.requests[0]?.keepalive).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    // The tab comes back: acknowledged, so neither this page nor the next sends it again.
    await vi.advanceTimersByTimeAsync(60_000);
    window.dispatchEvent(new Event('pagehide'));
    df.shutdown();
    start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(gateway.events().map((e) => e.event)).toEqual(['before hidden']);
    expect(beacons.calls).toHaveLength(0);
  });

  it('on pagehide, beacons what waits, and a visibilitychange after it sends nothing more', async () => {
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const df = start();
    df.track('before hide');
    // The order browsers use when a page is left: pagehide, then visibilitychange to hidden.
    window.dispatchEvent(new Event('pagehide'));
    hide();
    expect(beacons.calls).toHaveLength(1);
    expect(beacons.calls[0]?.url).toBe(`${ENDPOINT}/v1/batch`);
    const body = JSON.parse((await beacons.calls[0]?.body) ?? '');
    expect(body.pipelineKey).toBe(KEY);
    expect(body.batch.map((e: EventBody) => e.event)).toEqual(['before hide']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(gateway.requests).toHaveLength(0);
  });

  it('loses nothing when a beacon the browser accepted fails on the way (gateway 503, reset)', async () => {
    const beacons = beaconRecorder(() => true);
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const first = start();
    first.track('beaconed');
    window.dispatchEvent(new Event('pagehide'));
    first.shutdown();
    const [beaconed] = JSON.parse((await beacons.calls[0]?.body) ?? '').batch as EventBody[];
    expect(beaconed?.event).toBe('beaconed');

    // The beacon never reached the gateway; the next page sends the event again, same messageId.
    const second = start();
    await second.flush();
    expect(gateway.events().map((e) => e.messageId)).toEqual([beaconed?.messageId]);
  });

  it('keeps events waiting for a retry through hidden and pagehide, then delivers them once the gateway is back', async () => {
    const beacons = beaconRecorder(() => true);
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const outage = fakeGateway(() => ({ status: 503 }));
    vi.stubGlobal('fetch', outage.fetch);
    const first = start();
    first.track('outage 1');
    first.track('outage 2');
    await first.flush();
    hide();
    window.dispatchEvent(new Event('pagehide'));
    first.shutdown();
    expect(outage.requests).toHaveLength(1);
    expect(beacons.calls).toHaveLength(0);

    vi.stubGlobal('fetch', gateway.fetch);
    const second = start();
    second.track('after recovery');
    await second.flush();
    expect(gateway.events().map((e) => e.event)).toEqual(['outage 1', 'outage 2', 'after recovery']);
  });

  it('sends events a previous page left behind (reload while offline)', async () => {
    vi.stubGlobal('fetch', fakeGateway(() => 'network-error').fetch);
    vi.spyOn(navigator, 'sendBeacon').mockReturnValue(false);
    const first = start();
    first.track('offline 1');
    first.track('offline 2');
    await first.flush();
    window.dispatchEvent(new Event('pagehide'));
    first.shutdown();

    vi.stubGlobal('fetch', gateway.fetch);
    const second = start();
    second.track('online');
    await second.flush();
    expect(gateway.events().map((e) => e.event)).toEqual(['offline 1', 'offline 2', 'online']);
  });
});

describe('init', () => {
  it.each([
    [{ pipelineKey: 'sk_live_nope' }, /pipelineKey/],
    [{ pipelineKey: KEY, endpoint: 'not a url' }, /endpoint/],
    [{ pipelineKey: KEY, endpoint: 'ftp://data.example' }, /endpoint/],
    [{ pipelineKey: KEY, batchSize: 501 }, /batchSize/],
    [{ pipelineKey: KEY, flushInterval: -1 }, /flushInterval/],
    [{ pipelineKey: KEY, crossDomain: { linkedDomains: 'a.com' } }, /linkedDomains/],
  ])('refuses %j', (options, message) => {
    const df = createClient(window, { endpoint: ENDPOINT });
    expect(() => df.init(options as unknown as DataflyOptions)).toThrow(DataflyError);
    expect(() => df.init(options as unknown as DataflyOptions)).toThrow(message);
  });

  it('posts to a configured endpoint, trailing slash or path prefix included', async () => {
    const df = start({ endpoint: 'https://collect.example.org/signal/' });
    df.track('x');
    await df.flush();
    expect(gateway.requests[0]?.url).toBe('https://collect.example.org/signal/v1/batch');
  });

  it('keeps the first configuration when init is called twice', async () => {
    const warn = vi.fn();
    const df = start({ logger: { warn } });
    df.init({ pipelineKey: 'dk_test_other' });
    df.track('x');
    await df.flush();
    expect(gateway.requests[0]?.headers['x-pipeline-key']).toBe(KEY);
    expect(warn).toHaveBeenCalledOnce();
  });
});

describe('cross-domain extension point', () => {
  function link(href: string): HTMLAnchorElement {
    const a = document.createElement('a');
    a.href = href;
    a.innerHTML = '<span>go</span>';
    document.body.append(a);
    a.addEventListener('click', (e) => e.preventDefault());
    return a;
  }

  it('offers clicks on links to linked domains (and their subdomains) to decorateLink', () => {
    const decorateLink = vi.fn((url: URL, ctx: { anonymousId: string; endpoint: string }) => {
      return `${ctx.endpoint}/v1/identity/redirect?to=${encodeURIComponent(url.href)}`;
    });
    const df = start({ crossDomain: { linkedDomains: ['Other.example'], decorateLink } });
    const linked = link('https://www.other.example/cart?x=1');
    const unrelated = link('https://elsewhere.example/');
    const local = link('/local');
    for (const a of [linked, unrelated, local])
      a.querySelector('span')?.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    expect(decorateLink).toHaveBeenCalledOnce();
    expect(decorateLink.mock.calls[0]?.[1]).toEqual({
      anonymousId: df.anonymousId(),
      pipelineKey: KEY,
      endpoint: ENDPOINT,
    });
    expect(linked.href).toBe(
      `${ENDPOINT}/v1/identity/redirect?to=${encodeURIComponent('https://www.other.example/cart?x=1')}`,
    );
    expect(unrelated.href).toBe('https://elsewhere.example/');
  });

  it('calls onArrival with the landing URL before the first event, and lets it adopt an anonymous id', async () => {
    history.replaceState(null, '', '/?_dfx=token');
    const onArrival = vi.fn((url: URL, ctx: { setAnonymousId(id: string): void }) => {
      if (url.searchParams.get('_dfx') === 'token') ctx.setAnonymousId('visitor-from-other-site');
    });
    const df = start({ autoPage: true, crossDomain: { linkedDomains: ['other.example'], onArrival } });
    await df.flush();
    expect(onArrival).toHaveBeenCalledOnce();
    expect(gateway.events()[0]?.anonymousId).toBe('visitor-from-other-site');
    expect(localStorage.getItem('df.aid')).toBe('visitor-from-other-site');
  });
});
