import { describe, expect, it } from 'vitest';
import type { CredentialSource } from '../ports';
import { cachedCredentialSource } from './cached-credential-source';

describe('cached credential source', () => {
  it('loads once per TTL, single-flight, and does not cache failures', async () => {
    let t = 0;
    let calls = 0;
    let fail = false;
    const source: CredentialSource = {
      async getCredentials() {
        calls += 1;
        if (fail) throw new Error('decrypt failed');
        return { token: `t${calls}` };
      },
    };
    const cached = cachedCredentialSource(source, { ttlMs: 1000, now: () => t });
    const [a, b] = await Promise.all([cached.getCredentials('i1'), cached.getCredentials('i1')]);
    expect(a).toEqual({ token: 't1' });
    expect(b).toBe(a);
    expect(calls).toBe(1);
    t += 1001;
    fail = true;
    await expect(cached.getCredentials('i1')).rejects.toThrow('decrypt failed');
    fail = false;
    expect(await cached.getCredentials('i1')).toEqual({ token: 't3' });
    cached.invalidate('i1');
    expect(await cached.getCredentials('i1')).toEqual({ token: 't4' });
  });

  it('does not cache a load that was in flight when the credentials were invalidated', async () => {
    let token = 'old';
    let release: () => void = () => {};
    const source: CredentialSource = {
      async getCredentials() {
        const value = { token };
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return value;
      },
    };
    const cached = cachedCredentialSource(source, { ttlMs: 60_000 });
    const before = cached.getCredentials('i1');
    // The operator rotates the token; an auth failure invalidates while the old value is still loading.
    token = 'new';
    cached.invalidate('i1');
    release();
    expect(await before).toEqual({ token: 'old' });
    const after = cached.getCredentials('i1');
    release();
    expect(await after).toEqual({ token: 'new' });
  });
});
