import { describe, expect, it } from 'vitest';
import { describeCacheContract } from './cache.contract';
import { isCacheError } from './errors';
import { createMemoryCache, MemoryCacheStore } from './memory.adapter';

describeCacheContract('in-process', () => {
  // One store shared by every namespace, as in the all-in-one process.
  const store = new MemoryCacheStore({ maxEntries: 10_000 });
  return { open: async (namespace) => createMemoryCache({ store, namespace }) };
});

function manualClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('MemoryCacheStore', () => {
  it('evicts the least recently used entry when full', async () => {
    const cache = createMemoryCache({ maxEntries: 3 });
    await cache.set('a', '1', { ttlMs: 60_000 });
    await cache.set('b', '2', { ttlMs: 60_000 });
    await cache.set('c', '3', { ttlMs: 60_000 });
    expect(await cache.get('a')).toBe('1');
    await cache.set('d', '4', { ttlMs: 60_000 });
    expect(await cache.get('b')).toBeNull();
    expect([await cache.get('a'), await cache.get('c'), await cache.get('d')]).toEqual(['1', '3', '4']);
    await cache.close();
  });

  it('never evicts an unexpired setIfAbsent entry, so a consumed token id cannot be replayed', async () => {
    const clock = manualClock();
    const cache = createMemoryCache({ maxEntries: 2, now: clock.now });
    expect(await cache.setIfAbsent('jti:1', 'used', 1_000)).toBe(true);
    await cache.set('x', '1', { ttlMs: 60_000 });
    await cache.set('y', '2', { ttlMs: 60_000 });
    expect(await cache.setIfAbsent('jti:1', 'replay', 1_000)).toBe(false);
    expect(await cache.setIfAbsent('jti:2', 'used', 1_000)).toBe(true);
    const full = await cache.setIfAbsent('jti:3', 'used', 1_000).catch((err: unknown) => err);
    expect(isCacheError(full) && full.code).toBe('capacity');
    expect(isCacheError(full) && full.retryable).toBe(true);
    clock.advance(1_001);
    expect(await cache.setIfAbsent('jti:3', 'used', 1_000)).toBe(true);
    await cache.close();
  });

  it('sweeps expired entries in bounded batches', () => {
    const clock = manualClock();
    const store = new MemoryCacheStore({ now: clock.now, sweepBatch: 10, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) store.set(`short:${i}`, 'v', 100);
    for (let i = 0; i < 5; i++) store.set(`long:${i}`, 'v', 10_000);
    clock.advance(101);
    store.sweep();
    expect(store.size).toBe(20);
    store.sweep();
    store.sweep();
    expect(store.size).toBe(5);
    store.close();
  });

  it('leaves a shared store open when one namespaced view closes', async () => {
    const store = new MemoryCacheStore();
    const a = createMemoryCache({ store, namespace: 'a' });
    const b = createMemoryCache({ store, namespace: 'b' });
    await b.set('k', 'v', { ttlMs: 60_000 });
    await a.close();
    expect(await b.get('k')).toBe('v');
    store.close();
    await expect(b.get('k')).rejects.toMatchObject({ code: 'closed' });
  });

  it('rejects an invalid namespace', () => {
    expect(() => createMemoryCache({ namespace: 'has space' })).toThrow(/namespace/);
  });
});
