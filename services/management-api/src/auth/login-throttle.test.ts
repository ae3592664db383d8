import { createMemoryCache } from '@signal/cache';
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from './login-throttle';

describe('login throttle', () => {
  it('locks after the allowed failures, doubling the lock with each further failure up to the cap', async () => {
    const cache = createMemoryCache();
    let now = 1_000_000;
    const throttle = new LoginThrottle(cache, () => new Date(now), {
      maxFailures: 3,
      baseLockMs: 1000,
      maxLockMs: 3000,
    });
    expect(await throttle.recordFailure('A@x.example', '10.0.0.1')).toBe(0);
    expect(await throttle.recordFailure('a@x.example', '10.0.0.1')).toBe(0);
    expect(await throttle.lockedForMs('a@x.example', '10.0.0.1')).toBe(0);
    expect(await throttle.recordFailure('a@x.example', '10.0.0.1')).toBe(1000);
    expect(await throttle.lockedForMs('a@x.example', '10.0.0.1')).toBe(1000);
    expect(await throttle.lockedForMs('a@x.example', '10.0.0.2')).toBe(0);
    expect(await throttle.lockedForMs('b@x.example', '10.0.0.1')).toBe(0);
    now += 400;
    expect(await throttle.lockedForMs('a@x.example', '10.0.0.1')).toBe(600);
    expect(await throttle.recordFailure('a@x.example', '10.0.0.1')).toBe(2000);
    expect(await throttle.recordFailure('a@x.example', '10.0.0.1')).toBe(3000);
    expect(await throttle.recordFailure('a@x.example', '10.0.0.1')).toBe(3000);
    await throttle.reset('a@x.example', '10.0.0.1');
    expect(await throttle.lockedForMs('a@x.example', '10.0.0.1')).toBe(0);
    await cache.close();
  });
});
