import { describe, expect, it } from 'vitest';
import { runSignalExpectingExit, startSignal } from '../support/signal-process';

const KEY_NEW = '0123456789abcdef'.repeat(4);
const KEY_OLD = 'fedcba9876543210'.repeat(4);

describe('the embedded all-in-one: encryption at start-up', () => {
  it('refuses to start with REQUIRE_ENCRYPTION=true and no key, naming ENCRYPTION_KEY', async () => {
    const { code, output } = await runSignalExpectingExit({ REQUIRE_ENCRYPTION: 'true' });
    expect(code).not.toBe(0);
    expect(output).toMatch(/ENCRYPTION_KEY/);
    expect(output).not.toContain('Signal is running');
  });

  it('refuses to start with REQUIRE_ENCRYPTION=true and no JWT_SECRET, naming JWT_SECRET', async () => {
    const { code, output } = await runSignalExpectingExit({
      REQUIRE_ENCRYPTION: 'true',
      ENCRYPTION_KEY: KEY_NEW,
    });
    expect(code).toBe(1);
    expect(output).toMatch(/REQUIRE_ENCRYPTION is true but JWT_SECRET is not set/);
    expect(output).not.toContain('Signal is running');
  });

  it('refuses to start with a malformed key and says what it must be', async () => {
    const { code, output } = await runSignalExpectingExit({ ENCRYPTION_KEY: KEY_NEW.slice(1) });
    expect(code).toBe(1);
    expect(output).toContain('ENCRYPTION_KEY must be exactly 64 hexadecimal characters (got 63)');
  });

  it('reports dual-key mode on /health/crypto when both keys are set', async () => {
    const signal = await startSignal({ ENCRYPTION_KEY: KEY_NEW, ENCRYPTION_KEY_PREVIOUS: KEY_OLD });
    try {
      const res = await fetch(`${signal.baseUrl}/health/crypto`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const { records_by_key_id: perKey, ...contract } = await res.json();
      expect(contract).toEqual({
        status: 'healthy',
        provider: 'local',
        key_version: 2,
        dual_key_mode: true,
        checks: { key_valid: true, round_trip: true, previous_key_valid: true },
        // A fresh deployment encrypted everything under the new key: nothing is left under the old one.
        records_under_previous_key: 0,
      });
      // One count per key this process holds (current and previous), plus plaintext and any other key.
      expect(Object.keys(perKey)).toHaveLength(4);
      expect(perKey).toMatchObject({ plaintext: 0, other: 0 });
      expect(Object.values(perKey).filter((n) => n === 0)).toHaveLength(3);
    } finally {
      expect(await signal.stop()).toBe(0);
    }
  });

  it('reports single-key mode without previous_key_valid, and never logs the key', async () => {
    const signal = await startSignal({ ENCRYPTION_KEY: KEY_NEW, LOG_LEVEL: 'debug' });
    try {
      const { records_by_key_id: perKey, ...body } = await (
        await fetch(`${signal.baseUrl}/health/crypto`)
      ).json();
      expect(Object.keys(perKey)).toHaveLength(3);
      expect(perKey).toMatchObject({ plaintext: 0, other: 0 });
      expect(body).toEqual({
        status: 'healthy',
        provider: 'local',
        key_version: 1,
        dual_key_mode: false,
        checks: { key_valid: true, round_trip: true },
      });
    } finally {
      await signal.stop();
    }
    expect(signal.output()).not.toContain(KEY_NEW);
    expect(signal.output()).toContain('crypto.key_loaded');
  });
});
