import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@signal/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { startSignal } from '../support/signal-process';

/** Runs the all-in-one to its exit (a start that fails), with its output. */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/signal/src/main.ts'], {
    cwd: repoRoot(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on('data', (chunk) => {
    output += String(chunk);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the first start of the all-in-one', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'signal-first-start-'));
  let busy: Server | undefined;
  afterAll(async () => {
    await new Promise((resolve) => busy?.close(resolve) ?? resolve(undefined));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('shows the generated admin password even when the start fails after seeding it', async () => {
    busy = createServer();
    const port = await new Promise<number>((resolve) => {
      busy?.listen(0, () => {
        const address = busy?.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    // The port is taken: the seed commits (admin, pipeline, HMAC secret), then listening fails.
    const failed = await runToExit({ PORT: String(port), SIGNAL_DATA_DIR: dataDir });
    expect(failed.code).toBe(1);
    expect(failed.output).toMatch(/EADDRINUSE|address already in use/i);
    const password = /Admin password for \S+ \(shown once, store it now\): (\S+)/.exec(failed.output)?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(16);
    expect(failed.output).toMatch(/HMAC secret for server sources \(shown once\): \S+/);

    // The next start serves, and does not show the secrets again.
    const signal = await startSignal({}, { dataDir });
    try {
      expect(signal.output()).not.toContain('shown once');
      expect(signal.output()).not.toContain(password);
    } finally {
      expect(await signal.stop()).toBe(0);
    }
  }, 150_000);
});
