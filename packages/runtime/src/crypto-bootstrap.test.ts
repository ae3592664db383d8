import { loadConfig } from '@signal/config';
import { describe, expect, it } from 'vitest';
import { bootstrapCrypto, rotationAwareCryptoHealth } from './crypto-bootstrap';

const quiet = { info() {}, warn() {} };
const runtimeFor = (env: Record<string, string>) =>
  bootstrapCrypto({ config: loadConfig({ env, cwd: '/nonexistent' }), logger: quiet });

describe('rotationAwareCryptoHealth', () => {
  it('adds the count of records under the previous key in dual-key mode only, cached', async () => {
    let calls = 0;
    let now = 0;
    const count = async () => {
      calls += 1;
      return 42;
    };
    const dual = runtimeFor({
      ENCRYPTION_KEY: '0123456789abcdef'.repeat(4),
      ENCRYPTION_KEY_PREVIOUS: 'fedcba9876543210'.repeat(4),
    });
    const health = rotationAwareCryptoHealth(dual, count, { cacheMs: 1000, now: () => now });
    expect(await health()).toMatchObject({ dual_key_mode: true, records_under_previous_key: 42 });
    await health();
    expect(calls).toBe(1);
    now = 2000;
    await health();
    expect(calls).toBe(2);

    const single = runtimeFor({ ENCRYPTION_KEY: '0123456789abcdef'.repeat(4) });
    const body = await rotationAwareCryptoHealth(single, count)();
    expect(body).not.toHaveProperty('records_under_previous_key');
  });

  it('leaves the count out when the database cannot answer, keeping the crypto verdict', async () => {
    const dual = runtimeFor({
      ENCRYPTION_KEY: '0123456789abcdef'.repeat(4),
      ENCRYPTION_KEY_PREVIOUS: 'fedcba9876543210'.repeat(4),
    });
    const body = await rotationAwareCryptoHealth(dual, async () => {
      throw new Error('database down');
    })();
    expect(body.status).toBe('healthy');
    expect(body).not.toHaveProperty('records_under_previous_key');
  });

  it('counts records per held key id, with plaintext and every other key summed, cached and bounded', async () => {
    const dual = runtimeFor({
      ENCRYPTION_KEY: '0123456789abcdef'.repeat(4),
      ENCRYPTION_KEY_PREVIOUS: 'fedcba9876543210'.repeat(4),
    });
    const { currentKeyId, previousKeyId } = dual.crypto.keyring;
    let calls = 0;
    const countByKeyId = async () => {
      calls += 1;
      return new Map<string | null, number>([
        [currentKeyId, 7],
        [previousKeyId ?? 'none', 3],
        [null, 2],
        ['aa'.repeat(16), 5],
        ['bb'.repeat(16), 1],
      ]);
    };
    const health = rotationAwareCryptoHealth(dual, async () => 3, { countByKeyId });
    const body = await health();
    expect(body.records_by_key_id).toEqual({
      [currentKeyId]: 7,
      [previousKeyId ?? 'none']: 3,
      plaintext: 2,
      other: 6,
    });
    expect(body).toMatchObject({ status: 'healthy', records_under_previous_key: 3 });
    await health();
    expect(calls).toBe(1);

    const down = rotationAwareCryptoHealth(dual, async () => 3, {
      countByKeyId: async () => {
        throw new Error('database down');
      },
    });
    const degraded = await down();
    expect(degraded.status).toBe('healthy');
    expect(degraded).not.toHaveProperty('records_by_key_id');
  });
});
