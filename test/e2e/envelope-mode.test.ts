import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSignal } from '../support/signal-process';

const KEY = '0123456789abcdef'.repeat(4);

describe('the embedded all-in-one in envelope mode (local KMS provider)', () => {
  it('starts with DEKs wrapped in the database, reports the KMS canary, and restarts onto the same DEKs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'signal-envelope-'));
    const env = {
      ENCRYPTION_KEY: KEY,
      ENCRYPTION_ENVELOPE: 'true',
      REQUIRE_ENCRYPTION: 'true',
      JWT_SECRET: 'e2e-envelope-jwt-secret-of-at-least-32-bytes',
    };
    const first = await startSignal(env, { dataDir, timeoutMs: 60_000 });
    let before: unknown;
    try {
      const res = await fetch(`${first.baseUrl}/health/crypto`);
      expect(res.status).toBe(200);
      const { records_by_key_id: perKey, ...body } = await res.json();
      before = body;
      // Each data class's active DEK holds its own records; nothing is in plaintext.
      expect(perKey).toMatchObject({ plaintext: 0, other: 0 });
      expect(before).toEqual({
        status: 'healthy',
        provider: 'local',
        key_version: 1,
        dual_key_mode: false,
        checks: { key_valid: true, round_trip: true, kms_canary: true },
      });
    } finally {
      expect(await first.stop()).toBe(0);
    }
    expect(first.output()).not.toContain(KEY);

    // The demo's credentials were sealed under the DEKs: a restart must open them (the demo set-up reads them).
    const second = await startSignal(env, { dataDir, timeoutMs: 60_000 });
    try {
      const { records_by_key_id: _perKey, ...after } = await (
        await fetch(`${second.baseUrl}/health/crypto`)
      ).json();
      expect(after).toEqual(before);
    } finally {
      expect(await second.stop()).toBe(0);
    }

    // The same data directory with another ENCRYPTION_KEY: its KEK cannot unwrap the DEKs, so it refuses to start.
    const wrongKey = await startSignal(
      { ...env, ENCRYPTION_KEY: 'fedcba9876543210'.repeat(4) },
      { dataDir, timeoutMs: 60_000 },
    ).then(
      async (running) => {
        await running.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(wrongKey).toMatch(/Refusing to start/);
    expect(wrongKey).not.toContain(KEY);
    rmSync(dataDir, { recursive: true, force: true });
  }, 180_000);
});
