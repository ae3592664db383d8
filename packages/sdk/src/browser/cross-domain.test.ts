// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient } from './client';
import { RESOLVE_TIMEOUT_MS, TOKEN_TIMEOUT_MS, withToken } from './cross-domain';
import type { DataflyApi, DataflyOptions, EventBody } from './types';

const KEY = 'dk_live_4f9c2a';
const ENDPOINT = 'https://data.shop.example';
const TOKEN = `v1.${'Ab-_'.repeat(80)}`;
const VISITOR = '0f8e2d1c-7b6a-4c5d-9e8f-1a2b3c4d5e6f';

interface Sent {
  readonly url: string;
  readonly init: RequestInit;
  readonly body: Record<string, unknown>;
}
type Answer = Response | Promise<Response> | 'network-error' | 'hang';

/** The Identity Hub and the gateway at the browser's `fetch` boundary. */
function fakeHub(answers: { token?: () => Answer; resolve?: () => Answer } = {}) {
  const sent: Sent[] = [];
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = String(input);
    sent.push({ url, init, body: JSON.parse(String(init.body ?? '{}')) as Record<string, unknown> });
    const answer = url.endsWith('/v1/identity/token')
      ? (answers.token?.() ?? Response.json({ token: TOKEN }))
      : url.endsWith('/v1/identity/resolve')
        ? (answers.resolve?.() ?? Response.json({ anonymousId: VISITOR }))
        : new Response(null, { status: 202 });
    if (answer === 'network-error') throw new TypeError('Failed to fetch');
    if (answer === 'hang') return new Promise<Response>(() => {});
    return answer;
  };
  return {
    fetch,
    sent,
    to: (path: string) => sent.filter((s) => s.url === `${ENDPOINT}${path}`),
    events: () => sent.filter((s) => s.url.endsWith('/v1/batch')).flatMap((s) => s.body.batch as EventBody[]),
  };
}

const clients: DataflyApi[] = [];
function start(options: Partial<DataflyOptions> = {}): DataflyApi {
  const client = createClient(window, { endpoint: ENDPOINT });
  clients.push(client);
  client.init({
    pipelineKey: KEY,
    autoPage: false,
    crossDomain: { linkedDomains: ['other.example', 'third.example'] },
    ...options,
  });
  return client;
}

let hub: ReturnType<typeof fakeHub>;
let assign: ReturnType<typeof vi.fn<(url: string | URL) => void>>;
/** Whether the SDK cancelled the last click, seen after its capture listener ran (then cancelled for the test). */
let cancelledBySdk: boolean | undefined;
const guard = (event: Event): void => {
  cancelledBySdk = event.defaultPrevented;
  // happy-dom would otherwise really navigate (and open windows for target=_blank).
  event.preventDefault();
};

function use(h: ReturnType<typeof fakeHub>): void {
  hub = h;
  vi.stubGlobal('fetch', h.fetch);
}

beforeEach(() => {
  localStorage.clear();
  sessionStorage.clear();
  history.replaceState(null, '', '/');
  document.body.innerHTML = '';
  use(fakeHub());
  assign = vi.fn<(url: string | URL) => void>();
  vi.spyOn(window.location, 'assign').mockImplementation(assign);
});
afterEach(() => {
  for (const client of clients.splice(0)) client.shutdown();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function link(href: string, attributes: Record<string, string> = {}): HTMLAnchorElement {
  const a = document.createElement('a');
  a.href = href;
  for (const [name, value] of Object.entries(attributes)) a.setAttribute(name, value);
  a.innerHTML = '<span>go</span>';
  // On the link itself: happy-dom follows links as the event passes them, before it reaches the document.
  a.addEventListener('click', guard);
  a.addEventListener('auxclick', guard);
  document.body.append(a);
  return a;
}

/** Clicks the link's content; true when the SDK cancelled the browser's navigation to handle it itself. */
function click(a: HTMLAnchorElement, init: MouseEventInit = {}, type = 'click'): boolean {
  cancelledBySdk = undefined;
  a.querySelector('span')?.dispatchEvent(
    new MouseEvent(type, { bubbles: true, cancelable: true, button: 0, ...init }),
  );
  return cancelledBySdk === true;
}

async function settled(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}

describe('leaving for a linked site', () => {
  it('fetches a fresh token on click, then navigates to the link with _dftk added', async () => {
    start();
    const a = link('https://other.example/cart?x=1#pay');
    expect(click(a)).toBe(true);
    await vi.waitFor(() => expect(assign).toHaveBeenCalledOnce());
    expect(assign).toHaveBeenCalledWith(`https://other.example/cart?x=1&_dftk=${TOKEN}#pay`);
    const [request] = hub.to('/v1/identity/token');
    expect(request?.body).toEqual({ to: 'https://other.example/cart?x=1#pay' });
    expect(request?.init.method).toBe('POST');
    expect(request?.init.credentials).toBe('include');
    expect(new Headers(request?.init.headers).get('x-pipeline-key')).toBe(KEY);
    // The link itself never carries a token.
    expect(a.href).toBe('https://other.example/cart?x=1#pay');
  });

  it('asks for nothing on page load: tokens exist only for the click that needs one', async () => {
    start();
    link('https://other.example/');
    await settled();
    expect(hub.to('/v1/identity/token')).toEqual([]);
  });

  it('falls back to the redirect endpoint when the token request fails', async () => {
    use(fakeHub({ token: () => 'network-error' }));
    start();
    click(link('https://other.example/p?q=1'));
    await vi.waitFor(() => expect(assign).toHaveBeenCalledOnce());
    expect(assign).toHaveBeenCalledWith(
      `${ENDPOINT}/v1/identity/redirect?to=${encodeURIComponent('https://other.example/p?q=1')}&pipelineKey=${KEY}`,
    );
  });

  it('falls back to the redirect endpoint on a server error, and when the hub is too slow', async () => {
    use(fakeHub({ token: () => new Response(null, { status: 503 }) }));
    start();
    click(link('https://other.example/a'));
    await vi.waitFor(() => expect(assign).toHaveBeenCalledOnce());
    expect(String(assign.mock.calls[0]?.[0])).toContain('/v1/identity/redirect?to=');

    vi.useFakeTimers();
    use(fakeHub({ token: () => 'hang' }));
    click(link('https://other.example/b'));
    await vi.advanceTimersByTimeAsync(TOKEN_TIMEOUT_MS - 1);
    expect(assign).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(assign).toHaveBeenCalledTimes(2);
    expect(String(assign.mock.calls[1]?.[0])).toContain(
      `/v1/identity/redirect?to=${encodeURIComponent('https://other.example/b')}`,
    );
  });

  it('follows the plain link when the hub refuses for good (no identity yet, destination not linked)', async () => {
    use(fakeHub({ token: () => Response.json({ error: { code: 'no_identity' } }, { status: 409 }) }));
    start();
    click(link('https://other.example/c'));
    await vi.waitFor(() => expect(assign).toHaveBeenCalledOnce());
    expect(assign).toHaveBeenCalledWith('https://other.example/c');
  });

  it('sends middle clicks, modified clicks and new-tab links through the redirect endpoint, synchronously', () => {
    start();
    const redirect = (href: string) =>
      `${ENDPOINT}/v1/identity/redirect?to=${encodeURIComponent(href)}&pipelineKey=${KEY}`;
    const middle = link('https://other.example/m');
    expect(click(middle, { button: 1 }, 'auxclick')).toBe(false);
    expect(middle.href).toBe(redirect('https://other.example/m'));
    const ctrl = link('https://other.example/c');
    expect(click(ctrl, { ctrlKey: true })).toBe(false);
    expect(ctrl.href).toBe(redirect('https://other.example/c'));
    const blank = link('https://third.example/t', { target: '_blank' });
    expect(click(blank)).toBe(false);
    expect(blank.href).toBe(redirect('https://third.example/t'));
    expect(hub.to('/v1/identity/token')).toEqual([]);
    expect(assign).not.toHaveBeenCalled();
  });

  it('leaves alone links to subdomains (the hub allowlists exact hosts), other sites and this site', async () => {
    start();
    for (const href of [
      'https://www.other.example/',
      'https://elsewhere.example/',
      '/local',
      `${location.origin}/x`,
    ]) {
      expect(click(link(href))).toBe(false);
    }
    await settled();
    expect(hub.to('/v1/identity/token')).toEqual([]);
    expect(assign).not.toHaveBeenCalled();
  });

  it('lets custom hooks replace the built-in ones', () => {
    const decorateLink = vi.fn(() => 'https://other.example/custom');
    start({ crossDomain: { linkedDomains: ['other.example'], decorateLink } });
    const a = link('https://other.example/');
    expect(click(a)).toBe(false);
    expect(a.href).toBe('https://other.example/custom');
    expect(decorateLink).toHaveBeenCalledOnce();
  });
});

describe('arriving with a token', () => {
  it('removes _dftk from the address bar at once, resolves it, and sends the first events under the adopted id', async () => {
    history.replaceState({ from: 'app' }, '', `/landing?a=1&_dftk=${TOKEN}&b=%20x#top`);
    const df = start({ autoPage: true });
    // Synchronously, before anything else on the page runs.
    expect(location.pathname + location.search + location.hash).toBe('/landing?a=1&b=%20x#top');
    expect(history.state).toEqual({ from: 'app' });
    await df.flush();
    expect(hub.to('/v1/identity/resolve').map((s) => s.body)).toEqual([{ token: TOKEN }]);
    expect(hub.to('/v1/identity/resolve')[0]?.init.credentials).toBe('include');
    // The hub refuses a token of another org than this page's pipeline (a site linked by someone else).
    expect(new Headers(hub.to('/v1/identity/resolve')[0]?.init.headers).get('x-pipeline-key')).toBe(KEY);
    expect(df.anonymousId()).toBe(VISITOR);
    const [page] = hub.events();
    expect(page?.anonymousId).toBe(VISITOR);
    expect(page?.context.page.url).not.toContain('_dftk');
    expect(JSON.stringify(hub.sent.filter((s) => !s.url.endsWith('/resolve')))).not.toContain(TOKEN);
  });

  it('holds the queue until the token is resolved, then sends', async () => {
    let answer: (r: Response) => void = () => {};
    const pending = new Promise<Response>((resolve) => {
      answer = resolve;
    });
    use(fakeHub({ resolve: () => pending }));
    history.replaceState(null, '', `/?_dftk=${TOKEN}`);
    const df = start({ autoPage: true, flushInterval: 0 });
    await settled();
    expect(hub.events()).toEqual([]);
    answer(Response.json({ anonymousId: VISITOR }));
    await vi.waitFor(() => expect(hub.events()).toHaveLength(1));
    expect(hub.events()[0]?.anonymousId).toBe(VISITOR);
    expect(df.anonymousId()).toBe(VISITOR);
  });

  it('sends anyway, under its own id, when the hub refuses the token or does not answer in time', async () => {
    use(fakeHub({ resolve: () => Response.json({ error: { code: 'invalid_token' } }, { status: 400 }) }));
    history.replaceState(null, '', `/?_dftk=${TOKEN}`);
    const refused = start({ autoPage: true });
    const own = refused.anonymousId();
    await refused.flush();
    expect(own).not.toBe(VISITOR);
    expect(hub.events()[0]?.anonymousId).toBe(own);
    refused.shutdown();

    vi.useFakeTimers();
    use(fakeHub({ resolve: () => 'hang' }));
    history.replaceState(null, '', `/?_dftk=${TOKEN}`);
    createClient(window, { endpoint: ENDPOINT }).init({
      pipelineKey: KEY,
      flushInterval: 0,
      crossDomain: { linkedDomains: ['other.example'] },
    });
    await vi.advanceTimersByTimeAsync(RESOLVE_TIMEOUT_MS - 10);
    expect(hub.events()).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(hub.events()).toHaveLength(1);
  });

  it('removes a token that is not one of ours without sending it anywhere', async () => {
    history.replaceState(null, '', '/?_dftk=%3Cscript%3E&x=1');
    const df = start({ autoPage: true });
    expect(location.search).toBe('?x=1');
    await df.flush();
    expect(hub.to('/v1/identity/resolve')).toEqual([]);
    expect(hub.events()).toHaveLength(1);
  });

  it('leaves URLs without a token exactly as they are', () => {
    history.replaceState(null, '', '/p?_dftkx=1&a=%2B+b#h');
    start();
    expect(location.pathname + location.search + location.hash).toBe('/p?_dftkx=1&a=%2B+b#h');
    expect(hub.to('/v1/identity/resolve')).toEqual([]);
  });
});

describe('withToken', () => {
  it('replaces an existing _dftk and keeps the rest byte for byte', () => {
    expect(withToken(new URL('https://b.example/x?_dftk=old&a=%20b#f'), TOKEN)).toBe(
      `https://b.example/x?a=%20b&_dftk=${TOKEN}#f`,
    );
  });
});
