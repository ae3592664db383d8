import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** `SIGNAL_REQUIRE_SERVICES=1` (CI): a missing server binary fails the run instead of skipping. */
export function requireOrSkip(available: boolean, reason: string): boolean {
  if (!available && process.env.SIGNAL_REQUIRE_SERVICES === '1') {
    throw new Error(`${reason} (required: SIGNAL_REQUIRE_SERVICES=1)`);
  }
  return available;
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it; released before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server on a port picked by `freePort`. Another process may take that port between the pick and
 * the server's bind, so a start that failed because the address was in use (`inUse` reads that from the
 * error or the server's log) is tried again on a new port, up to `attempts` times; any other failure is
 * thrown at once.
 */
export async function startOnFreePort<T>(
  start: (port: number) => Promise<T>,
  inUse: (err: unknown) => boolean,
  attempts = 3,
): Promise<{ port: number; started: T }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { port, started: await start(port) };
    } catch (err) {
      if (attempt >= attempts || !inUse(err)) throw err;
    }
  }
}

export const ADDRESS_IN_USE = /address already in use|EADDRINUSE/i;

/** Spawns a server process and resolves once `ready` matches its output; rejects if it exits first. */
export function startProcess(
  command: string,
  args: readonly string[],
  ready: RegExp,
  timeoutMs = 15_000,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not become ready in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const check = () => {
      if (ready.test(output)) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
        resolve({ child, output: () => output });
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code}:\n${output}`));
    });
  });
}

/** Sends SIGTERM to a process this test started and waits for it to exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

export const silentLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
