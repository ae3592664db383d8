import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './run';

const KEY = '0123456789abcdef'.repeat(4);
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env,
    cwd: '/nonexistent-signal-cwd',
  });
  return { code, stdout, stderr };
}

describe('signal-cli crypto-rotate-deks', () => {
  it('makes a new active DEK per data class each time, printing ids only', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'signal-rotate-deks-'));
    dirs.push(dataDir);
    const env = {
      SIGNAL_DATA_DIR: dataDir,
      ENCRYPTION_KEY: KEY,
      ENCRYPTION_ENVELOPE: 'true',
      LOG_LEVEL: 'silent',
    };
    expect((await cli(['migrate'], env)).code).toBe(0);
    const first = await cli(['crypto-rotate-deks'], env);
    expect(first.code).toBe(0);
    const second = await cli(['crypto-rotate-deks'], env);
    const ids = (run: { stdout: string }) => JSON.parse(run.stdout).active_dek_ids as Record<string, string>;
    expect(Object.keys(ids(first)).sort()).toEqual(['bus', 'credentials', 'general', 'identity', 'tokens']);
    for (const dataClass of ['general', 'credentials', 'identity', 'tokens']) {
      expect(ids(second)[dataClass]).toMatch(/^[0-9a-f]{32}$/);
      expect(ids(second)[dataClass]).not.toBe(ids(first)[dataClass]);
    }
    expect(first.stdout + first.stderr).not.toContain(KEY);
  });

  it('refuses in direct-derivation mode, pointing to the runbook', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'signal-rotate-deks-'));
    dirs.push(dataDir);
    const run = await cli(['crypto-rotate-deks'], { SIGNAL_DATA_DIR: dataDir, ENCRYPTION_KEY: KEY });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('needs envelope mode');
  });
});
