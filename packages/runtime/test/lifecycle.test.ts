import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./fixtures/shutdown-child.ts', import.meta.url));

interface Run {
  readonly process: ChildProcess;
  readonly lines: string[];
  waitFor(line: string): Promise<void>;
  readonly exited: Promise<number | null>;
}

function run(mode: 'signal' | 'fatal', stopMs: number): Run {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, mode, String(stopMs)], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiting: { line: string; resolve: () => void }[] = [];
  let buffered = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of waiting.filter((x) => x.line === line)) w.resolve();
    }
  });
  return {
    process: proc,
    lines,
    waitFor: (line) =>
      lines.includes(line)
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiting.push({ line, resolve })),
    exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))),
  };
}

/** SIGTERM, and once it was handled a second signal: the process exits 1 at once, its slow stop unfinished. */
async function expectExitAtOnceOnSecondSignal(p: Run, second: NodeJS.Signals): Promise<void> {
  p.process.kill('SIGTERM');
  await p.waitFor('signal');
  p.process.kill(second);
  expect(await p.exited).toBe(1);
  expect(p.lines).not.toContain('stopped');
}

describe('graceful shutdown of a service process', () => {
  it('stops its components and exits 0 on SIGTERM', async () => {
    const p = run('signal', 50);
    await p.waitFor('ready');
    p.process.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.lines).toEqual(['started', 'ready', 'stopping', 'signal', 'stopped']);
  });

  it('exits 1 at once on a second signal during a slow stop', async () => {
    const p = run('signal', 60_000);
    await p.waitFor('ready');
    await expectExitAtOnceOnSecondSignal(p, 'SIGINT');
  });

  it('stops once, gracefully, and exits 1 when the process itself cannot go on (a supervisor restarts it)', async () => {
    const p = run('fatal', 200);
    expect(await p.exited).toBe(1);
    expect(p.lines).toEqual(['started', 'ready', 'stopping', 'stopped']);
  });

  it('lets a stop it started itself finish on a first signal, and exits at once on a second', async () => {
    const finishing = run('fatal', 500);
    await finishing.waitFor('stopping');
    finishing.process.kill('SIGTERM');
    expect(await finishing.exited).toBe(1);
    expect(finishing.lines).toContain('stopped');

    const impatient = run('fatal', 60_000);
    await impatient.waitFor('stopping');
    await expectExitAtOnceOnSecondSignal(impatient, 'SIGTERM');
  });
});
