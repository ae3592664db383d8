// @vitest-environment happy-dom
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Reply } from '../testing/fake-gateway';
import { beaconRecorder, fakeGateway } from '../testing/fake-gateway';
import type { Queue, QueueOptions } from './queue';
import { createQueue, STALE_SLOT_MS } from './queue';
import type { KeyValueStore } from './storage';
import { webStore } from './storage';
import type { EventBody } from './types';
import { uuid } from './uuid';

const KEY = 'dk_test_queue';
const URL_BATCH = 'https://data.example.com/v1/batch';

function event(name = 'e', padding = 0): EventBody {
  return {
    type: 'track',
    event: name,
    anonymousId: 'anon-1',
    messageId: uuid(),
    properties: padding > 0 ? { pad: 'x'.repeat(padding) } : {},
    traits: {},
    context: {
      page: { url: 'https://shop.example.com/' },
      consent: {},
      library: { name: 'datafly.js', version: 'test' },
    },
    timestamp: new Date().toISOString(),
  };
}

const queues: Queue[] = [];
function queue(overrides: Partial<QueueOptions> = {}): Queue {
  const q = createQueue({
    pipelineKey: KEY,
    url: URL_BATCH,
    batchSize: 10,
    flushInterval: 1_000,
    maxQueueSize: 1_000,
    store: webStore('localStorage'),
    logger: undefined,
    ...overrides,
  });
  queues.push(q);
  return q;
}

function slots(): { key: string; value: { k: string; t: number; d: number; q: EventBody[] } }[] {
  return Object.keys(localStorage)
    .filter((k) => k.startsWith('df.q.'))
    .map((key) => ({ key, value: JSON.parse(localStorage.getItem(key) ?? 'null') }));
}

function install(
  reply?: (request: Parameters<Parameters<typeof fakeGateway>[0] & object>[0], i: number) => Reply,
) {
  const gateway = fakeGateway(reply);
  vi.stubGlobal('fetch', gateway.fetch);
  return gateway;
}

beforeEach(() => {
  localStorage.clear();
  vi.useFakeTimers();
});

afterEach(() => {
  for (const q of queues.splice(0)) q.stop();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('batching and flush triggers', () => {
  it('sends one batch as soon as batchSize events wait', async () => {
    const gateway = install();
    const q = queue({ batchSize: 3 });
    q.push(event('a'));
    q.push(event('b'));
    await vi.advanceTimersByTimeAsync(10);
    expect(gateway.requests).toHaveLength(0);
    q.push(event('c'));
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.requests).toHaveLength(1);
    expect(gateway.events().map((e) => e.event)).toEqual(['a', 'b', 'c']);
    expect(q.size()).toBe(0);
  });

  it('sends what waits flushInterval ms after the first event was queued', async () => {
    const gateway = install();
    const q = queue({ flushInterval: 1_000 });
    q.push(event('a'));
    await vi.advanceTimersByTimeAsync(600);
    q.push(event('b'));
    await vi.advanceTimersByTimeAsync(399);
    expect(gateway.requests).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.requests).toHaveLength(1);
    expect(gateway.events().map((e) => e.event)).toEqual(['a', 'b']);
  });

  it('posts JSON with the pipeline key in header and body, keepalive and credentials', async () => {
    const gateway = install();
    const q = queue();
    const sent = event('a');
    q.push(sent);
    await q.flush();
    const [request] = gateway.requests;
    expect(request?.url).toBe(URL_BATCH);
    expect(request?.method).toBe('POST');
    expect(request?.keepalive).toBe(true);
    expect(request?.credentials).toBe('include');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers['x-pipeline-key']).toBe(KEY);
    expect(request?.body.pipelineKey).toBe(KEY);
    expect(request?.body.batch).toEqual([sent]);
    expect(Number.isNaN(Date.parse(request?.body.sentAt ?? ''))).toBe(false);
    expect(request?.body.dropped).toBeUndefined();
  });

  it('keeps a snapshot of the event: later changes to the page object are not sent', async () => {
    const gateway = install();
    const q = queue();
    const sent = event('a');
    q.push(sent);
    sent.properties.changed = true;
    await q.flush();
    expect(gateway.events()[0]?.properties).toEqual({});
  });

  it('cuts batches below the 64 KiB keepalive budget and sends an oversized event alone without keepalive', async () => {
    const gateway = install();
    const q = queue({ batchSize: 500 });
    for (let i = 0; i < 70; i += 1) q.push(event(`small-${i}`, 2_000));
    q.push(event('huge', 100_000));
    q.push(event('after'));
    await q.flush();
    const sizes = gateway.requests.map((r) => new TextEncoder().encode(r.rawBody).length);
    expect(gateway.requests.length).toBeGreaterThanOrEqual(4);
    for (const [i, r] of gateway.requests.entries()) {
      const huge = r.body.batch.some((e) => e.event === 'huge');
      if (huge) {
        expect(r.body.batch).toHaveLength(1);
        expect(r.keepalive).toBe(false);
      } else {
        expect(sizes[i]).toBeLessThan(64 * 1024);
        expect(r.keepalive).toBe(true);
      }
    }
    expect(gateway.events().map((e) => e.event)).toEqual([
      ...Array.from({ length: 70 }, (_, i) => `small-${i}`),
      'huge',
      'after',
    ]);
  });

  it('never sends more than 500 events in one batch (the gateway MAX_BATCH_SIZE)', async () => {
    const gateway = install();
    const q = queue({ batchSize: 500, maxQueueSize: 2_000 });
    // Minimal bodies, so the count limit bites before the byte budget.
    for (let i = 0; i < 1_200; i += 1) q.push({ messageId: uuid() } as unknown as EventBody);
    await q.flush();
    expect(gateway.requests.map((r) => r.body.batch.length)).toEqual([500, 500, 200]);
  });

  it('delivers every event exactly once and in order, whatever the sizes (property)', async () => {
    vi.useRealTimers();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 50 }),
        async (paddings, batchSize) => {
          localStorage.clear();
          const gateway = install();
          const q = queue({ batchSize });
          const pushed = paddings.map((p) => event('p', p));
          for (const e of pushed) q.push(e);
          await q.flush();
          q.stop();
          expect(gateway.events().map((e) => e.messageId)).toEqual(pushed.map((e) => e.messageId));
          for (const r of gateway.requests) {
            if (r.body.batch.length > 1)
              expect(new TextEncoder().encode(r.rawBody).length).toBeLessThan(65_536);
          }
          expect(slots()).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('retries', () => {
  it('retries a 503 with exponential backoff and jitter, then delivers once', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const gateway = install((_, i) => (i < 3 ? { status: 503 } : { status: 202 }));
    const q = queue();
    const sent = event('a');
    q.push(sent);
    await q.flush();
    expect(gateway.requests).toHaveLength(1);
    // Attempt n waits between half and all of min(30 s, 1 s · 2^(n-1)); random 0.5 → three quarters.
    await vi.advanceTimersByTimeAsync(749);
    expect(gateway.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_499);
    expect(gateway.requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(gateway.requests).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(gateway.requests).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gateway.requests).toHaveLength(4);
    expect(gateway.requests.every((r) => r.body.batch[0]?.messageId === sent.messageId)).toBe(true);
    expect(q.size()).toBe(0);
    expect(slots()).toEqual([]);
  });

  it('honours Retry-After (seconds) on 429, even over new events and flush()', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const gateway = install((_, i) =>
      i === 0 ? { status: 429, headers: { 'Retry-After': '5' } } : { status: 202 },
    );
    const q = queue({ batchSize: 1 });
    q.push(event('a'));
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.requests).toHaveLength(1);
    q.push(event('b'));
    await q.flush();
    await vi.advanceTimersByTimeAsync(4_990);
    expect(gateway.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10);
    expect(gateway.requests).toHaveLength(2);
    expect(gateway.events().map((e) => e.event)).toEqual(['a', 'a', 'b']);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const at = new Date(Date.now() + 20_000).toUTCString();
    const gateway = install((_, i) =>
      i === 0 ? { status: 503, headers: { 'Retry-After': at } } : { status: 202 },
    );
    const q = queue();
    q.push(event('a'));
    await q.flush();
    await vi.advanceTimersByTimeAsync(18_000);
    expect(gateway.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(gateway.requests).toHaveLength(2);
  });

  it.each([408, 500, 502])('retries status %i', async (status) => {
    const gateway = install((_, i) => (i === 0 ? { status } : { status: 202 }));
    const q = queue();
    q.push(event('a'));
    await q.flush();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(gateway.requests).toHaveLength(2);
    expect(q.size()).toBe(0);
  });

  it.each([400, 401, 403, 413, 422])(
    'drops a batch refused with %i, without retrying, and says so',
    async (status) => {
      const gateway = install(() => ({ status }));
      const warn = vi.fn();
      const q = queue({ logger: { warn } });
      q.push(event('a'));
      q.push(event('b'));
      await q.flush();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(gateway.requests).toHaveLength(1);
      expect(q.size()).toBe(0);
      expect(slots()).toEqual([]);
      expect(warn).toHaveBeenCalledWith({ status, events: 2 }, 'datafly: batch refused by the gateway');
    },
  );

  it('retries after a network failure and at once when the browser comes back online', async () => {
    let up = false;
    const gateway = install(() => (up ? { status: 202 } : 'network-error'));
    const q = queue();
    q.push(event('a'));
    await q.flush();
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.advanceTimersByTimeAsync(2_000);
    await vi.advanceTimersByTimeAsync(4_000);
    expect(gateway.requests.length).toBe(4);
    up = true;
    q.online();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.requests.length).toBe(5);
    expect(q.size()).toBe(0);
  });

  it('caps the backoff at 30 s', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1);
    const gateway = install(() => ({ status: 503 }));
    const q = queue();
    q.push(event('a'));
    await q.flush();
    for (let i = 0; i < 10; i += 1) await vi.advanceTimersByTimeAsync(30_000);
    const before = gateway.requests.length;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(gateway.requests.length).toBe(before + 1);
  });
});

describe('persistence', () => {
  it('survives a reload: a page that died without pagehide is adopted once its slot is stale', async () => {
    const gateway = install(() => 'network-error');
    const first = queue();
    const sent = [event('a'), event('b')];
    for (const e of sent) first.push(e);
    await first.flush();
    first.stop(); // the tab crashed: no pagehide
    expect(slots()[0]?.value.q.map((e) => e.messageId)).toEqual(sent.map((e) => e.messageId));

    install();
    // Within the stale window the slot may belong to a live tab: leave it alone.
    const early = queue();
    expect(early.size()).toBe(0);
    early.stop();

    vi.setSystemTime(Date.now() + STALE_SLOT_MS + 1);
    const gateway2 = install();
    const second = queue();
    expect(second.size()).toBe(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway2.events().map((e) => e.messageId)).toEqual(sent.map((e) => e.messageId));
    expect(gateway2.events()).toEqual(sent);
    expect(slots()).toEqual([]);
    expect(gateway.requests.length).toBeGreaterThan(0);
  });

  it('a slot released on pagehide is adopted by the next page immediately', async () => {
    install(() => 'network-error');
    vi.stubGlobal('navigator', { ...navigator, sendBeacon: () => false });
    const first = queue();
    first.push(event('a'));
    first.unload();
    first.stop();
    expect(slots()[0]?.value.t).toBe(0);
    vi.unstubAllGlobals();
    const gateway = install();
    const second = queue();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.events().map((e) => e.event)).toEqual(['a']);
    expect(second.size()).toBe(0);
  });

  it('deduplicates by messageId when slots overlap, so a replay sends each event once', async () => {
    const dup = event('dup');
    const other = event('other');
    const slot = (events: EventBody[]) => JSON.stringify({ k: KEY, t: 0, d: 0, q: events });
    localStorage.setItem('df.q.aaaa', slot([dup]));
    localStorage.setItem('df.q.bbbb', slot([dup, other]));
    const gateway = install();
    queue();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.events().map((e) => e.messageId)).toEqual([dup.messageId, other.messageId]);
  });

  it("leaves another pipeline's slot alone and discards corrupt slots", async () => {
    const foreign = JSON.stringify({ k: 'dk_test_other', t: 0, d: 0, q: [event('x')] });
    localStorage.setItem('df.q.cccc', foreign);
    localStorage.setItem('df.q.dddd', '{not json');
    const gateway = install();
    queue();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.requests).toHaveLength(0);
    expect(localStorage.getItem('df.q.cccc')).toBe(foreign);
    expect(localStorage.getItem('df.q.dddd')).toBeNull();
  });

  it('bounds the queue, drops the oldest, and reports the count once', async () => {
    let up = false;
    const warn = vi.fn();
    const gateway = install(() => (up ? { status: 202 } : 'network-error'));
    const q = queue({ maxQueueSize: 5, logger: { warn } });
    for (let i = 0; i < 8; i += 1) q.push(event(`e${i}`));
    expect(q.size()).toBe(5);
    expect(warn).toHaveBeenCalledWith(
      { dropped: 1, queued: 5 },
      'datafly: queue full, oldest events dropped',
    );
    expect(slots()[0]?.value.d).toBe(3);
    up = true;
    await vi.advanceTimersByTimeAsync(60_000);
    const delivered = gateway.requests.filter((r) => r.body.batch.length > 0);
    expect(
      gateway
        .events()
        .slice(-5)
        .map((e) => e.event),
    ).toEqual(['e3', 'e4', 'e5', 'e6', 'e7']);
    expect(delivered.at(-1)?.body.dropped).toBe(3);
    q.push(event('later'));
    await q.flush();
    expect(gateway.requests.at(-1)?.body.dropped).toBeUndefined();
  });

  it('keeps every event in memory when localStorage is full, saving the newest that fit, and warns once', async () => {
    const backing = webStore('localStorage');
    const limited: KeyValueStore = {
      ...backing,
      set: (key, value) => value.length < 4_000 && backing.set(key, value),
    };
    let up = false;
    const gateway = install(() => (up ? { status: 202 } : 'network-error'));
    const warn = vi.fn();
    const q = queue({ store: limited, maxQueueSize: 100, logger: { warn } });
    const pushed = Array.from({ length: 40 }, (_, i) => event(`e${i}`, 200));
    for (const e of pushed) q.push(e);
    expect(q.size()).toBe(40);
    const stored = slots()[0]?.value;
    expect(stored?.q.at(-1)?.event).toBe('e39');
    // Should this page die, the next one learns how many events the slot could not hold.
    expect(stored && stored.q.length + stored.d).toBe(40);
    // Once, when the quota first bit, not once per event after it.
    expect(warn).toHaveBeenCalledOnce();
    expect(warn.mock.calls[0]?.[1]).toBe('datafly: storage full, older events are kept in memory only');
    up = true;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gateway.events().at(-1)?.event).toBe('e39');
    expect(new Set(gateway.events().map((e) => e.messageId))).toEqual(
      new Set(pushed.map((e) => e.messageId)),
    );
    expect(gateway.requests.every((r) => r.body.dropped === undefined)).toBe(true);
    expect(q.size()).toBe(0);
    expect(slots()).toEqual([]);
  });

  it('delivers to a healthy gateway when localStorage refuses every write', async () => {
    const backing = webStore('localStorage');
    const full: KeyValueStore = { ...backing, set: () => false };
    const gateway = install();
    const warn = vi.fn();
    const q = queue({ store: full, logger: { warn } });
    const pushed = [event('a'), event('b'), event('c')];
    for (const e of pushed) q.push(e);
    await q.flush();
    expect(gateway.events().map((e) => e.messageId)).toEqual(pushed.map((e) => e.messageId));
    expect(q.size()).toBe(0);
    expect(warn).toHaveBeenCalledOnce();
  });

  it('returns at once when storage fills up while a batch is in flight (the page never freezes)', async () => {
    const backing = webStore('localStorage');
    let full = false;
    let refused = 0;
    const store: KeyValueStore = {
      ...backing,
      set: (key, value) => {
        if (!full) return backing.set(key, value);
        // A persist that retried a refused write forever would freeze the page; fail the test instead.
        refused += 1;
        if (refused > 50) throw new Error('persist keeps retrying a write the quota refuses');
        return false;
      },
    };
    let answer: (r: Response) => void = () => {};
    const bodies: string[] = [];
    vi.stubGlobal('fetch', (_: unknown, init: RequestInit) => {
      bodies.push(String(init.body));
      return new Promise<Response>((r) => (answer = r));
    });
    const q = queue({ store, batchSize: 1 });
    q.push(event('in flight'));
    await vi.advanceTimersByTimeAsync(0);
    expect(bodies).toHaveLength(1);
    full = true;
    q.push(event('next'));
    expect(q.size()).toBe(2);
    answer(new Response(null, { status: 202 }));
    await vi.advanceTimersByTimeAsync(0);
    answer(new Response(null, { status: 202 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(bodies.flatMap((b) => JSON.parse(b).batch.map((e: EventBody) => e.event))).toEqual([
      'in flight',
      'next',
    ]);
    expect(q.size()).toBe(0);
  });
});

describe('unload', () => {
  /** The events of each beacon, in call order. */
  async function beaconed(calls: { body: Promise<string> }[]): Promise<string[][]> {
    const bodies = await Promise.all(calls.map((c) => c.body));
    return bodies.map((b) => (JSON.parse(b).batch as EventBody[]).map((e) => e.event ?? ''));
  }

  it('beacons what waits as text/plain with the key in the body, and keeps it in the released slot', async () => {
    install();
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue();
    const sent = [event('a'), event('b')];
    for (const e of sent) q.push(e);
    q.unload();
    expect(beacons.calls).toHaveLength(1);
    const call = beacons.calls[0];
    expect(call?.url).toBe(URL_BATCH);
    expect(call?.type).toBe('text/plain');
    const body = JSON.parse((await call?.body) ?? '');
    expect(body.pipelineKey).toBe(KEY);
    expect(body.batch).toEqual(sent);
    // `true` from sendBeacon only means the browser queued it: nothing is acknowledged yet.
    expect(slots().map((s) => [s.value.t, s.value.q.map((e) => e.messageId)])).toEqual([
      [0, sent.map((e) => e.messageId)],
    ]);
  });

  it('loses nothing when the browser queued the beacon but it never arrived: the next page sends it again', async () => {
    const gateway = install();
    const beacons = beaconRecorder(() => true);
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const first = queue();
    const sent = [event('a'), event('b')];
    for (const e of sent) first.push(e);
    first.unload();
    first.stop(); // the page is gone; the beacon failed on the way (503, reset): nothing reached the gateway
    expect(beacons.calls).toHaveLength(1);
    expect(gateway.requests).toHaveLength(0);

    const second = queue();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.events()).toEqual(sent);
    expect(second.size()).toBe(0);
    expect(slots()).toEqual([]);
  });

  it.each([
    ['a retry delay runs', () => ({ status: 503, headers: { 'Retry-After': '30' } })],
    ['the network failed', () => 'network-error' as const],
  ])('sends no beacon while %s and keeps the events for the next page', async (_, reply) => {
    install(reply);
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const first = queue();
    const sent = [event('a'), event('b')];
    for (const e of sent) first.push(e);
    await first.flush();
    first.unload();
    first.stop();
    expect(beacons.calls).toHaveLength(0);
    expect(slots()[0]?.value.q.map((e) => e.messageId)).toEqual(sent.map((e) => e.messageId));

    const gateway = install();
    queue();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.events()).toEqual(sent);
  });

  it('sends no beacon while the browser is offline', () => {
    install();
    vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(false);
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue();
    q.push(event('a'));
    q.unload();
    expect(beacons.calls).toHaveLength(0);
    expect(slots()[0]?.value.q.map((e) => e.event)).toEqual(['a']);
  });

  it('splits beacons below 64 KiB, stops at the first the browser refuses, and keeps every event', async () => {
    install();
    const beacons = beaconRecorder((i) => i < 2);
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue({ batchSize: 500 });
    for (let i = 0; i < 60; i += 1) q.push(event(`e${i}`, 2_000));
    q.unload();
    expect(beacons.calls.length).toBe(3);
    for (const c of beacons.calls) expect(c.size).toBeLessThan(64 * 1024);
    const kept = slots()[0]?.value;
    expect(kept?.t).toBe(0);
    expect(kept?.q.map((e) => e.event)).toEqual(Array.from({ length: 60 }, (_, i) => `e${i}`));
  });

  it('does not let an event too big for a beacon hold back the others', async () => {
    install();
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue();
    q.push(event('a'));
    q.push(event('huge', 100_000));
    q.push(event('b'));
    q.unload();
    expect(await beaconed(beacons.calls)).toEqual([['a', 'b']]);
    expect(slots()[0]?.value.q.map((e) => e.event)).toEqual(['a', 'huge', 'b']);
  });

  it('keeps the batch in flight in the slot: its keepalive request may still fail', async () => {
    let resolve: (r: Response) => void = () => {};
    vi.stubGlobal('fetch', () => new Promise<Response>((r) => (resolve = r)));
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue();
    const inflight = event('inflight');
    q.push(inflight);
    void q.flush();
    q.push(event('waiting'));
    q.unload();
    expect(await beaconed(beacons.calls)).toEqual([['waiting']]);
    expect(slots()[0]?.value.q.map((e) => e.event)).toEqual(['inflight', 'waiting']);
    resolve(new Response(null, { status: 202 }));
    await vi.advanceTimersByTimeAsync(0);
    // Acknowledged, so gone; the beaconed event stays, and the slot stays released for the next page.
    expect(slots().map((s) => [s.value.t, s.value.q.map((e) => e.event)])).toEqual([[0, ['waiting']]]);
  });

  it('sends nothing more once the page is left, and resumes when it comes back from the cache', async () => {
    const gateway = install();
    const beacons = beaconRecorder();
    vi.spyOn(navigator, 'sendBeacon').mockImplementation(beacons.sendBeacon);
    const q = queue();
    q.push(event('a'));
    q.unload();
    await q.flush();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(gateway.requests).toHaveLength(0);
    q.reclaim();
    await vi.advanceTimersByTimeAsync(0);
    expect(gateway.events().map((e) => e.event)).toEqual(['a']);
    expect(slots()).toEqual([]);
  });
});
