import { createMemoryCache } from '@signal/cache';
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from './login-throttle';

function setup(options: ConstructorParameters<typeof LoginThrottle>[2]) {
  const cache = createMemoryCache();
  const clock = { now: 1_000_000 };
  const throttle = new LoginThrottle(cache, () => new Date(clock.now), options);
  /** One attempt whose password turns out wrong: the lock in force afterwards (or the refusal's). */
  const fail = async (email: string, ip: string) => {
    const attempt = await throttle.begin(email, ip);
    return attempt.lockedForMs > 0 ? -attempt.lockedForMs : attempt.failed();
  };
  return { cache, clock, throttle, fail };
}

describe('login throttle', () => {
  it('locks a pair after the allowed failures, doubling the lock with each further failure up to the cap', async () => {
    const { cache, clock, throttle, fail } = setup({ maxFailures: 3, baseLockMs: 1000, maxLockMs: 3000 });
    expect(await fail('A@x.example', '10.0.0.1')).toBe(0);
    expect(await fail('a@x.example', '10.0.0.1')).toBe(0);
    expect(await fail('a@x.example', '10.0.0.1')).toBe(1000);
    // Locked: refused before any password check; other addresses and accounts are not.
    expect((await throttle.begin('a@x.example', '10.0.0.1')).lockedForMs).toBe(1000);
    expect((await throttle.begin('a@x.example', '10.0.0.2')).lockedForMs).toBe(0);
    expect((await throttle.begin('b@x.example', '10.0.0.1')).lockedForMs).toBe(0);
    clock.now += 1000;
    expect(await fail('a@x.example', '10.0.0.1')).toBe(2000);
    clock.now += 2000;
    expect(await fail('a@x.example', '10.0.0.1')).toBe(3000);
    clock.now += 3000;
    const right = await throttle.begin('a@x.example', '10.0.0.1');
    expect(right.lockedForMs).toBe(0);
    await right.succeeded();
    expect(await fail('a@x.example', '10.0.0.1')).toBe(0);
    await cache.close();
  });

  it('counts an attempt when it begins: concurrent attempts beyond the limit are refused unchecked', async () => {
    const { cache, throttle } = setup({ maxFailures: 3 });
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () => throttle.begin('a@x.example', '10.0.0.1')),
    );
    expect(attempts.filter((a) => a.lockedForMs === 0)).toHaveLength(3);
    expect(attempts.filter((a) => a.lockedForMs > 0)).toHaveLength(7);
    await cache.close();
  });

  it('lets exactly one attempt of a burst try again when a lock ends', async () => {
    const { cache, clock, throttle, fail } = setup({ maxFailures: 2, baseLockMs: 1000 });
    await fail('a@x.example', '10.0.0.1');
    expect(await fail('a@x.example', '10.0.0.1')).toBe(1000);
    clock.now += 1000;
    const burst = await Promise.all(
      Array.from({ length: 10 }, () => throttle.begin('a@x.example', '10.0.0.1')),
    );
    const through = burst.filter((a) => a.lockedForMs === 0);
    expect(through).toHaveLength(1);
    expect(await through[0]?.failed()).toBeGreaterThanOrEqual(2000);
    expect((await throttle.begin('a@x.example', '10.0.0.1')).lockedForMs).toBeGreaterThanOrEqual(2000);
    await cache.close();
  });

  it('locks an account for every address after the account-wide failures, whatever the addresses', async () => {
    const { cache, clock, throttle, fail } = setup({
      maxFailures: 5,
      maxAccountFailures: 4,
      accountLockMs: 30 * 60_000,
    });
    expect(await fail('a@x.example', '10.0.0.1')).toBe(0);
    expect(await fail('a@x.example', '10.0.0.2')).toBe(0);
    expect(await fail('a@x.example', '10.0.0.3')).toBe(0);
    expect(await fail('a@x.example', '10.0.0.4')).toBe(30 * 60_000);
    expect((await throttle.begin('a@x.example', '192.0.2.99')).lockedForMs).toBe(30 * 60_000);
    expect((await throttle.begin('b@x.example', '10.0.0.1')).lockedForMs).toBe(0);
    clock.now += 30 * 60_000;
    expect((await throttle.begin('a@x.example', '192.0.2.99')).lockedForMs).toBe(0);
    await cache.close();
  });

  it('keeps only digests of the email in its keys', async () => {
    const keys: string[] = [];
    const cache = createMemoryCache();
    const seen = (key: string) => {
      keys.push(key);
      return key;
    };
    const spy = {
      get: (key: string) => cache.get(seen(key)),
      set: (key: string, value: string, options: { ttlMs: number }) => cache.set(seen(key), value, options),
      delete: (key: string) => cache.delete(seen(key)),
      incrementWindow: (key: string, ms: number) => cache.incrementWindow(seen(key), ms),
      setIfAbsent: (key: string, value: string, ms: number) => cache.setIfAbsent(seen(key), value, ms),
      getAndDelete: (key: string) => cache.getAndDelete(seen(key)),
    };
    const throttle = new LoginThrottle(spy, () => new Date(), { maxFailures: 1, maxAccountFailures: 1 });
    await (await throttle.begin('secret.person@x.example', '10.0.0.1')).failed();
    await throttle.begin('secret.person@x.example', '10.0.0.1');
    expect(keys.length).toBeGreaterThan(4);
    expect(keys.join(' ')).not.toMatch(/secret|person|x\.example|10\.0\.0\.1/);
    await cache.close();
  });
});
