import { describe, expect, it } from 'vitest';
import { cachedPipelineDirectory, type PipelineAuth } from './pipeline-directory';

const KEY = 'dk_live_abcdefghijklmnop1234';

function pipeline(validUntil: number | null): PipelineAuth {
  return {
    orgId: 'org_1',
    pipelineId: 'pl_1',
    type: 'web',
    enabled: true,
    keyStatus: validUntil === null ? 'active' : 'grace',
    allowedDomains: ['example.com'],
    rateLimitRps: null,
    hmacSecrets: [],
    validUntil,
  };
}

describe('the pipeline key cache', () => {
  it('keeps a key in its grace window no longer than the window, whatever the TTL', async () => {
    let clock = 1_000_000;
    let stored: PipelineAuth | null = pipeline(clock + 1_000);
    let lookups = 0;
    const cache = cachedPipelineDirectory(
      {
        findPipelineByKey: async () => {
          lookups += 1;
          return stored;
        },
      },
      { ttlMs: 300_000, now: () => clock },
    );
    expect(await cache.findPipelineByKey(KEY)).toMatchObject({ keyStatus: 'grace' });
    clock += 999;
    expect(await cache.findPipelineByKey(KEY)).toMatchObject({ keyStatus: 'grace' });
    expect(lookups).toBe(1);
    // The grace ended: the database no longer knows the key, and neither does the cache, at once.
    stored = null;
    clock += 1;
    expect(await cache.findPipelineByKey(KEY)).toBeNull();
    expect(lookups).toBe(2);
  });

  it('keeps an answer with nothing expiring for the TTL', async () => {
    let clock = 0;
    let lookups = 0;
    const cache = cachedPipelineDirectory(
      {
        findPipelineByKey: async () => {
          lookups += 1;
          return pipeline(null);
        },
      },
      { ttlMs: 300_000, now: () => clock },
    );
    await cache.findPipelineByKey(KEY);
    clock += 299_999;
    await cache.findPipelineByKey(KEY);
    expect(lookups).toBe(1);
    clock += 1;
    await cache.findPipelineByKey(KEY);
    expect(lookups).toBe(2);
  });
});
