import type { KeyValueStore } from './storage';
import { isRecord, parseJson } from './storage';
import type { Outcome } from './transport';
import { BODY_BUDGET, backoffMs, batchBody, beacon, MAX_BATCH, postBatch } from './transport';
import type { EventBody, Logger } from './types';
import { uuid } from './uuid';

/** Storage keys of queue slots: one per page instance, so two tabs never overwrite each other's events. */
const SLOT_PREFIX = 'df.q.';
/** A slot not written for this long belongs to a page that died without `pagehide`; another page adopts it. */
export const STALE_SLOT_MS = 30_000;

interface Item {
  readonly id: string;
  /** The event serialized once at enqueue: later changes to the page's objects cannot alter it. */
  readonly json: string;
  readonly bytes: number;
}

export interface QueueOptions {
  readonly pipelineKey: string;
  /** `endpoint + '/v1/batch'`. */
  readonly url: string;
  readonly batchSize: number;
  readonly flushInterval: number;
  readonly maxQueueSize: number;
  readonly store: KeyValueStore;
  readonly logger: Logger | undefined;
}

export interface Queue {
  push(event: EventBody): void;
  /** Sends everything waiting unless a retry delay is running; resolves when that attempt has settled. */
  flush(): Promise<void>;
  /**
   * The page is being left (`pagehide`): beacon what waits and release the slot. Nothing is sent after this
   * until `reclaim`.
   */
  unload(): void;
  /** Connectivity came back: retry now instead of at the end of a network backoff. */
  online(): void;
  /** The page came back from the back/forward cache: claim the slot again. */
  reclaim(): void;
  stop(): void;
  size(): number;
}

const encoder = new TextEncoder();

function toItem(event: unknown): Item | null {
  if (!isRecord(event) || typeof event.messageId !== 'string') return null;
  let json: string;
  try {
    json = JSON.stringify(event);
  } catch {
    // A cycle or a BigInt in the page's properties: JSON cannot carry the event.
    return null;
  }
  return { id: event.messageId, json, bytes: encoder.encode(json).length };
}

/**
 * The persistent, bounded, batching queue. Events live in memory and in this page's localStorage slot until
 * the gateway acknowledges them (2xx) or refuses them for good (4xx other than 408/429); a page that dies
 * mid-send leaves its slot behind and the next page adopts it. Delivery is therefore at least once: an event
 * whose acknowledgement was lost is sent again with the same `messageId`, which the pipeline deduplicates.
 */
export function createQueue(options: QueueOptions): Queue {
  const { store, logger, pipelineKey, url } = options;
  const slot = SLOT_PREFIX + uuid().slice(0, 8);
  let items: Item[] = [];
  const ids = new Set<string>();
  let inflight: Item[] = [];
  let dropped = 0;
  let attempt = 0;
  let backoffUntil = 0;
  let offline = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let running: Promise<void> | null = null;
  let stopped = false;
  /** Between `pagehide` and a return from the back/forward cache: the slot is released, the loop idle. */
  let left = false;
  /** The last write saved only part of the queue (the quota): warn once per such spell, not per event. */
  let cramped = false;

  function add(item: Item): void {
    if (ids.has(item.id)) return;
    ids.add(item.id);
    items.push(item);
  }

  function remove(gone: readonly Item[]): void {
    const set = new Set(gone);
    items = items.filter((item) => !set.has(item));
    for (const item of gone) ids.delete(item.id);
  }

  /** Drops the oldest events beyond `limit` (never the batch in flight), counting them. */
  function trim(limit: number): void {
    let excess = items.length - limit;
    if (excess <= 0) return;
    const victims = items.filter((item) => excess > 0 && !inflight.includes(item) && excess-- > 0);
    remove(victims);
    dropped += victims.length;
    logger?.warn(
      { dropped: victims.length, queued: items.length },
      'datafly: queue full, oldest events dropped',
    );
  }

  /**
   * Writes the slot (`at` 0 marks it released). The slot is only the copy for the next page: a write the
   * quota refuses never costs the queue in memory an event. Instead the newest half, quarter… is saved, the
   * rest counted as dropped should this page die; `keep` halves to 0, so there are at most log2(n) + 2 writes,
   * and the strings shrink with it (about two full writes' work in all).
   */
  function persist(at = left ? 0 : Date.now()): void {
    const n = items.length;
    if (n === 0 && dropped === 0) {
      store.remove(slot);
      return;
    }
    const text = (keep: number): string =>
      `{"k":${JSON.stringify(pipelineKey)},"t":${at},"d":${dropped + n - keep},"q":[${items
        .slice(n - keep)
        .map((i) => i.json)
        .join(',')}]}`;
    let keep = n;
    while (!store.set(slot, text(keep)) && keep > 0) keep >>= 1;
    if (keep < n && !cramped)
      logger?.warn({ queued: n, saved: keep }, 'datafly: storage full, older events are kept in memory only');
    cramped = keep < n;
  }

  /** Takes over slots left by earlier pages of this site (same pipeline key) that are released or stale. */
  function adopt(): void {
    const now = Date.now();
    for (const key of store.keys()) {
      if (!key.startsWith(SLOT_PREFIX) || key === slot) continue;
      const parsed = parseJson(store.get(key));
      if (!isRecord(parsed) || !Array.isArray(parsed.q) || typeof parsed.t !== 'number') {
        store.remove(key);
        continue;
      }
      if (parsed.k !== pipelineKey || (parsed.t !== 0 && now - parsed.t < STALE_SLOT_MS)) continue;
      for (const event of parsed.q) {
        const item = toItem(event);
        if (item !== null) add(item);
      }
      if (typeof parsed.d === 'number' && parsed.d > 0) dropped += parsed.d;
      store.remove(key);
    }
    trim(options.maxQueueSize);
  }

  /** The next batch: oldest first, at most MAX_BATCH events and BODY_BUDGET bytes (one oversized event alone). */
  function nextChunk(from: readonly Item[]): Item[] {
    const chunk: Item[] = [];
    let bytes = 0;
    for (const item of from) {
      if (chunk.length === MAX_BATCH || (chunk.length > 0 && bytes + item.bytes + 1 > BODY_BUDGET)) break;
      chunk.push(item);
      bytes += item.bytes + 1;
    }
    return chunk;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    const at = Math.max(Date.now() + ms, backoffUntil);
    if (timer !== undefined && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      void drain();
    }, at - Date.now());
  }

  async function loop(): Promise<void> {
    while (!stopped && !left) {
      if (Date.now() < backoffUntil) {
        // An earlier timer (or a flush) came before the retry delay ended: wait for the delay.
        schedule(0);
        return;
      }
      const chunk = nextChunk(items);
      if (chunk.length === 0) return;
      inflight = chunk;
      const reported = dropped;
      const bytes = chunk.reduce((sum, item) => sum + item.bytes, 0);
      const body = batchBody(
        pipelineKey,
        chunk.map((item) => item.json),
        reported,
      );
      const outcome: Outcome = await postBatch(url, pipelineKey, body, bytes < BODY_BUDGET);
      inflight = [];
      if (outcome.kind === 'retry') {
        attempt += 1;
        offline = outcome.network;
        const delay = Math.max(outcome.afterMs ?? 0, backoffMs(attempt, Math.random()));
        backoffUntil = Date.now() + delay;
        persist();
        schedule(delay);
        return;
      }
      attempt = 0;
      backoffUntil = 0;
      offline = false;
      remove(chunk);
      if (outcome.kind === 'sent') dropped = Math.max(dropped - reported, 0);
      else
        logger?.warn(
          { status: outcome.status, events: chunk.length },
          'datafly: batch refused by the gateway',
        );
      persist();
    }
  }

  function drain(): Promise<void> {
    if (running === null) {
      running = loop().finally(() => {
        running = null;
      });
    }
    return running;
  }

  adopt();
  persist();
  if (items.length > 0) schedule(0);

  return {
    push(event) {
      if (stopped) return;
      const item = toItem(event);
      if (item === null) {
        logger?.warn({ type: event.type }, 'datafly: event dropped, its data cannot be serialized as JSON');
        return;
      }
      add(item);
      trim(options.maxQueueSize);
      persist();
      schedule(items.length - inflight.length >= options.batchSize ? 0 : options.flushInterval);
    },
    flush: () => (stopped ? Promise.resolve() : drain()),
    unload() {
      left = true;
      // A beacon's `true` only means the browser queued it, so what it carries stays in the slot until a fetch
      // is acknowledged: the next page sends it again and the pipeline deduplicates on `messageId`. Offline or
      // in a retry delay it would fail too; an event over the budget alone would be refused and stop the rest;
      // the batch in flight has its keepalive request. `dropped` rides only on requests whose answer is seen.
      if (navigator.onLine !== false && Date.now() >= backoffUntil) {
        let waiting = items.filter((item) => !inflight.includes(item) && item.bytes < BODY_BUDGET);
        for (let chunk = nextChunk(waiting); chunk.length > 0; chunk = nextChunk(waiting)) {
          const body = batchBody(
            pipelineKey,
            chunk.map((item) => item.json),
            0,
          );
          if (!beacon(url, body)) break;
          waiting = waiting.slice(chunk.length);
        }
      }
      persist();
    },
    online() {
      if (!offline) return;
      attempt = 0;
      backoffUntil = 0;
      schedule(0);
    },
    reclaim() {
      left = false;
      persist();
      if (items.length > 0) schedule(0);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    },
    size: () => items.length,
  };
}
