import { randomBytes } from 'node:crypto';
import { CryptoError, createCryptoService, createKeyring, KeyEntry } from '@signal/crypto';
import { describe, expect, it } from 'vitest';
import { DekCache, type LoadedDek } from './dek-cache';

/** A loader typed against the cache's port: DEKs by id, with a call count and switchable failures. */
function loader() {
  const deks = new Map<string, Buffer>();
  const state = { calls: 0, fail: undefined as CryptoError | undefined, entries: [] as KeyEntry[] };
  const load = async (id: string): Promise<LoadedDek> => {
    state.calls++;
    if (state.fail !== undefined) throw state.fail;
    let dek = deks.get(id);
    if (dek === undefined) {
      dek = randomBytes(32);
      deks.set(id, dek);
    }
    const bytes = Buffer.from(dek);
    const entry = new KeyEntry({
      id: Buffer.from(id, 'hex'),
      dataClasses: ['credentials'],
      dataKey: () => bytes,
    });
    state.entries.push(entry);
    return { entry, commitment: Buffer.from(dek.subarray(0, 8)) };
  };
  return { load, state };
}

const ids = Array.from({ length: 4 }, () => randomBytes(16).toString('hex'));
const id = (i: number) => ids[i] ?? '';

const context = { purpose: 'probe', dataClass: 'credentials' } as const;

/** A crypto service whose every key lookup answers `entry` (typed against the Keyring port). */
function serviceOn(entry: KeyEntry) {
  const keyring = createKeyring({ current: randomBytes(32) });
  return createCryptoService({ keyring: { ...keyring, find: () => entry, sealingEntry: () => entry } });
}

/** Seals a probe now; `opens()` later tells whether the entry still holds its key material. */
function probe(entry: KeyEntry): { opens(): boolean } {
  const sealed = serviceOn(entry).seal('x', context);
  return {
    opens() {
      try {
        return serviceOn(entry).open(sealed, context).toString() === 'x';
      } catch {
        return false;
      }
    },
  };
}

describe('DekCache', () => {
  it('keeps at most maxEntries unpinned DEKs and zeroes the ones it evicts', async () => {
    const { load, state } = loader();
    const cache = new DekCache({
      load,
      maxEntries: 2,
      ttlMs: 60_000,
      refreshAheadMs: 1000,
      staleGraceMs: 0,
      timeoutMs: 1000,
    });
    const first = probe(await cache.get(id(0)));
    expect(first.opens()).toBe(true);
    await cache.get(id(1));
    await cache.get(id(2));
    expect(cache.size).toBe(2);
    expect(cache.holds(id(0))).toBe(false);
    expect(first.opens()).toBe(false);
    expect(probe(await cache.get(id(2))).opens()).toBe(true);
    expect(state.calls).toBe(3);
  });

  it('refreshes an entry in the background before it expires, keeping the prepared entry', async () => {
    const { load, state } = loader();
    let now = 0;
    const cache = new DekCache({
      load,
      maxEntries: 10,
      ttlMs: 10_000,
      refreshAheadMs: 2000,
      staleGraceMs: 0,
      timeoutMs: 1000,
      now: () => now,
    });
    const entry = await cache.get(id(0));
    const sealedEarlier = probe(entry);
    now = 8500; // inside the refresh-ahead window
    expect(cache.peek(id(0))).toBe(entry);
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.calls).toBe(2);
    now = 15_000; // past the original TTL, inside the refreshed one
    expect(cache.peek(id(0))).toBe(entry);
    expect(sealedEarlier.opens()).toBe(true);
  });

  it('a definite failure (destroyed) drops the cached DEK at once; an outage keeps it for decrypts within the grace', async () => {
    const { load, state } = loader();
    let now = 0;
    const cache = new DekCache({
      load,
      maxEntries: 10,
      ttlMs: 1000,
      refreshAheadMs: 100,
      staleGraceMs: 5000,
      timeoutMs: 1000,
      now: () => now,
    });
    await cache.get(id(0));
    await cache.get(id(1));
    now = 2000;
    state.fail = new CryptoError('key_unavailable', 'down');
    expect(probe(await cache.get(id(0))).opens()).toBe(true);
    state.fail = new CryptoError('key_destroyed', 'gone');
    await expect(cache.get(id(1))).rejects.toMatchObject({ code: 'key_destroyed' });
    expect(cache.holds(id(1))).toBe(false);
    now = 7000;
    state.fail = new CryptoError('key_unavailable', 'down');
    await expect(cache.get(id(0))).rejects.toMatchObject({ code: 'key_unavailable' });
  });
});
