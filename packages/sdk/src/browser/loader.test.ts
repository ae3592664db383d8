// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeGateway } from '../testing/fake-gateway';
import { boot } from './loader';
import type { DataflyApi } from './types';

const scope = window as unknown as Record<string, unknown>;
let gateway: ReturnType<typeof fakeGateway>;
const started: DataflyApi[] = [];

function script(attributes: Record<string, string>): HTMLScriptElement {
  const el = document.createElement('script');
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  return el;
}

function load(attributes: Record<string, string>): DataflyApi {
  const api = boot(window, script({ src: 'https://data.shop.example/d.js', ...attributes }));
  started.push(api);
  return api;
}

beforeEach(() => {
  localStorage.clear();
  gateway = fakeGateway();
  vi.stubGlobal('fetch', gateway.fetch);
});

afterEach(() => {
  for (const api of started.splice(0)) api.shutdown();
  delete scope._df;
  delete scope.analytics;
  vi.unstubAllGlobals();
});

describe('loading from a script tag', () => {
  it('reads data-pipeline-key, posts to the origin d.js came from and sends the first page view', async () => {
    const api = load({ 'data-pipeline-key': 'dk_live_abc' });
    expect(scope._df).toBe(api);
    await api.flush();
    expect(gateway.requests[0]?.url).toBe('https://data.shop.example/v1/batch');
    expect(gateway.requests[0]?.headers['x-pipeline-key']).toBe('dk_live_abc');
    expect(gateway.events().map((e) => e.type)).toEqual(['page']);
  });

  it('honours data-endpoint, data-global and data-auto-page="false"', async () => {
    const api = load({
      'data-pipeline-key': 'dk_test_abc',
      'data-endpoint': 'https://collect.shop.example',
      'data-global': 'analytics',
      'data-auto-page': 'false',
    });
    expect(scope.analytics).toBe(api);
    expect(scope._df).toBeUndefined();
    api.track('x');
    await api.flush();
    expect(gateway.requests[0]?.url).toBe('https://collect.shop.example/v1/batch');
    expect(gateway.events().map((e) => e.event)).toEqual(['x']);
  });

  it('honours data-wait-for-consent: the page view waits for the answer', async () => {
    const api = load({ 'data-pipeline-key': 'dk_test_abc', 'data-wait-for-consent': '2000' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(gateway.requests).toHaveLength(0);
    api.consent({ analytics: true });
    await api.flush();
    expect(gateway.events().map((e) => [e.type, e.context.consent.categories])).toEqual([
      ['page', { analytics: true }],
      ['track', { analytics: true }],
    ]);
  });

  it('does not wait for consent given in the stub queue', async () => {
    scope._df = [['consent', { analytics: true }]];
    const api = load({ 'data-pipeline-key': 'dk_test_abc', 'data-wait-for-consent': '5000' });
    await api.flush();
    expect(gateway.events().map((e) => [e.type, e.context.consent.categories])).toEqual([
      ['track', { analytics: true }],
      ['page', { analytics: true }],
    ]);
  });

  it('replays the stub queue in order, with consent and identity applied to the first page view', async () => {
    scope._df = [
      ['consent', { analytics: true }],
      ['identify', 'user-7', { tier: 'gold' }],
      ['track', 'add_to_cart', { currency: 'EUR', value: 10, items: [{ item_id: 'A' }] }],
    ];
    const api = load({ 'data-pipeline-key': 'dk_live_abc' });
    (scope._df as DataflyApi).push(['track', 'view_item', { items: [{ item_id: 'B' }] }]);
    await api.flush();
    const events = gateway.events();
    expect(events.map((e) => e.event ?? e.type)).toEqual([
      'consent_update',
      'identify',
      'add_to_cart',
      'page',
      'view_item',
    ]);
    const page = events[3];
    expect(page?.userId).toBe('user-7');
    expect(page?.context.consent.categories).toEqual({ analytics: true });
  });

  it('takes init from the stub when the tag has no key, and waits for one otherwise', async () => {
    scope._df = [
      ['track', 'early'],
      ['init', { pipelineKey: 'dk_test_stub', autoPage: false }],
    ];
    const api = load({});
    await api.flush();
    expect(gateway.events().map((e) => e.event)).toEqual(['early']);
    expect(gateway.requests[0]?.body.pipelineKey).toBe('dk_test_stub');
  });

  it('holds calls until init when configured by neither', async () => {
    const api = load({});
    api.track('held');
    await api.flush();
    expect(gateway.requests).toHaveLength(0);
    api.init({ pipelineKey: 'dk_test_late', autoPage: false });
    await api.flush();
    expect(gateway.events().map((e) => e.event)).toEqual(['held']);
  });

  it('is harmless when loaded twice', () => {
    const first = load({ 'data-pipeline-key': 'dk_live_abc' });
    const second = boot(window, script({ 'data-pipeline-key': 'dk_live_abc' }));
    expect(second).toBe(first);
  });

  it('falls back to _df for an unusable global name', () => {
    const api = load({ 'data-pipeline-key': 'dk_live_abc', 'data-global': 'x; alert(1)' });
    expect(scope._df).toBe(api);
  });

  it('does not collect when the tag asks to honour Do Not Track and the browser sends it', async () => {
    const dnt = vi.spyOn(navigator, 'doNotTrack', 'get').mockReturnValue('1');
    try {
      const api = load({ 'data-pipeline-key': 'dk_live_abc', 'data-respect-dnt': 'true' });
      api.track('x');
      await api.flush();
      expect(gateway.requests).toHaveLength(0);
    } finally {
      dnt.mockRestore();
    }
  });
});
