import { describe, expect, it } from 'vitest';
import { runCli } from './run';

async function cli(argv: string[], env: Record<string, string> = {}) {
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

const KEY_A = '0123456789abcdef'.repeat(4);
const KEY_B = 'fedcba9876543210'.repeat(4);

describe('signal-cli generate-key', () => {
  it('prints 64 lowercase hex characters and nothing else on stdout', async () => {
    const { code, stdout, stderr } = await cli(['generate-key']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(stderr).toBe('');
  });

  it('prints a different key each time', async () => {
    const keys = new Set<string>();
    for (let i = 0; i < 20; i++) keys.add((await cli(['generate-key'])).stdout);
    expect(keys.size).toBe(20);
  });
});

describe('signal-cli check-key', () => {
  it('prints the key id and mode, never the key', async () => {
    const { code, stdout } = await cli(['check-key'], { ENCRYPTION_KEY: KEY_A });
    expect(code).toBe(0);
    expect(stdout).toMatch(/mode: +single key/);
    expect(stdout).toMatch(/current key: +[0-9a-f]{32}\n/);
    expect(stdout).not.toContain(KEY_A);
  });

  it('reports dual-key mode with both fingerprints', async () => {
    const single = await cli(['check-key'], { ENCRYPTION_KEY: KEY_A });
    const dual = await cli(['check-key'], { ENCRYPTION_KEY: KEY_B, ENCRYPTION_KEY_PREVIOUS: KEY_A });
    expect(dual.code).toBe(0);
    expect(dual.stdout).toMatch(/dual-key/);
    const previousId = /previous key: +([0-9a-f]{32})/.exec(dual.stdout)?.[1];
    const singleId = /current key: +([0-9a-f]{32})/.exec(single.stdout)?.[1];
    expect(previousId).toBe(singleId);
    expect(dual.stdout).not.toContain(KEY_A);
    expect(dual.stdout).not.toContain(KEY_B);
  });

  it('exits 1 with the config error for an invalid key', async () => {
    const { code, stdout, stderr } = await cli(['check-key'], { ENCRYPTION_KEY: 'a'.repeat(63) });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('ENCRYPTION_KEY must be exactly 64 hexadecimal characters (got 63)\n');
  });

  it('exits 1 naming ENCRYPTION_KEY when none is set', async () => {
    const { code, stderr } = await cli(['check-key']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^ENCRYPTION_KEY is not set/);
  });

  it('exits 1 when the previous key equals the new one', async () => {
    const { code, stderr } = await cli(['check-key'], {
      ENCRYPTION_KEY: KEY_A,
      ENCRYPTION_KEY_PREVIOUS: KEY_A,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/ENCRYPTION_KEY_PREVIOUS must differ from ENCRYPTION_KEY/);
  });
});

describe('signal-cli usage', () => {
  it('--help on each verb describes it and exits 0', async () => {
    for (const verb of ['generate-key', 'check-key', 'migrate', 'audit-verify', 'crypto-reencrypt', 'dlq']) {
      const { code, stdout } = await cli([verb, '--help']);
      expect(code).toBe(0);
      expect(stdout).toContain(`usage: signal-cli ${verb}`);
    }
  });

  it('an unknown verb exits 2 with the list of verbs', async () => {
    const { code, stderr } = await cli(['rotate-everything']);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown verb');
    expect(stderr).toContain('generate-key');
  });
});

describe('signal-cli migrate and audit-verify (embedded database)', () => {
  it('migrates once, is idempotent, and verifies an intact audit chain', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dataDir = mkdtempSync(join(tmpdir(), 'signal-cli-'));
    try {
      const env = { SIGNAL_DATA_DIR: dataDir };
      const first = await cli(['migrate'], env);
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^applied \d+ migration\(s\):/);
      expect(first.stdout).toContain('bus/0001_topics_segments_leases');
      expect(first.stdout).toContain('audit/0002_append_only_triggers');
      const second = await cli(['migrate'], env);
      expect(second).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
      const verify = await cli(['audit-verify'], env);
      expect(verify.code).toBe(0);
      expect(verify.stdout).toMatch(/^audit log intact: 0 entries/);
      expect((await cli(['audit-verify', '--anchor', 'nonsense'], env)).code).toBe(2);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('signal-cli crypto re-encrypt (the runbook spelling)', () => {
  it('is the crypto-reencrypt verb', async () => {
    const help = await cli(['crypto', 're-encrypt', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe((await cli(['crypto-reencrypt', '--help'])).stdout);
  });
});
