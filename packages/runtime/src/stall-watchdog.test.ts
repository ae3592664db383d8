import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { armStallWatchdog } from './stall-watchdog';

/**
 * A process whose main thread is stuck can neither serve nor exit; the watchdog ends it so that its supervisor
 * restarts it. Run in children: a stuck main thread would stop the test runner too.
 */

const fixture = fileURLToPath(new URL('../test/stall-watchdog.fixture.ts', import.meta.url));

async function run(mode: 'stuck' | 'live') {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const killer = setTimeout(() => child.kill('SIGTERM'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(killer);
  return { code, signal, stderr };
}

describe('the stall watchdog', () => {
  it('ends a process whose main thread stopped turning, saying why', { timeout: 30_000 }, async () => {
    const { code, signal, stderr } = await run('stuck');
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    const line = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}');
    expect(line).toMatchObject({
      level: 60,
      msg: 'main thread stalled after a fatal error: ending the process',
    });
    expect(line.stalledMs).toBeGreaterThanOrEqual(1000);
  });

  it('leaves a busy but live process alone, and never keeps one alive', { timeout: 30_000 }, async () => {
    const { code, signal, stderr } = await run('live');
    expect({ code, signal }).toEqual({ code: 3, signal: null });
    expect(stderr).not.toContain('stalled');
  });

  it('refuses a limit too short to tell a stall from a busy moment', () => {
    expect(() => armStallWatchdog({ stallMs: 10, message: 'x' })).toThrow(RangeError);
  });
});
