import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '@signal/testkit';
import { type Dispatcher, request } from 'undici';

export const SERVICES = [
  'ingestion-gateway',
  'event-processor',
  'delivery-worker',
  'identity-hub',
  'management-api',
] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ServiceExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One service as its own process, exactly as it is deployed: `node --import tsx services/<name>/src/main.ts`. */
export interface ServiceProcess {
  readonly name: ServiceName;
  /** Throws until the service has said which port it listens on (`waitUntilReady` waits for that). */
  readonly baseUrl: string;
  /** The port it listens on, once known (with PORT=0 the service picks one and logs it); else undefined. */
  port(): number | undefined;
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<ServiceExit>;
  /** SIGTERM, then the exit and how long it took. */
  stop(): Promise<ServiceExit & { readonly ms: number }>;
  /** SIGKILL if still running (test clean-up). */
  kill(): void;
}

/**
 * The service's "listening" log line ({port, tls, …}, at info): the port it bound. Tests start services with
 * PORT=0 and read it from there; a port picked free beforehand could be taken by another process (or an
 * outgoing connection of this one) before the service binds it.
 */
const LISTENING_PORT = /"port":(\d+),"tls":(?:true|false)[,}]/;

export function startService(
  name: ServiceName,
  env: Record<string, string>,
  options: { https?: boolean } = {},
): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: repoRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let port: number | undefined = env.PORT === '0' ? undefined : Number(env.PORT ?? '8080');
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  // The port from whole stdout lines only (a stderr chunk could land inside a log line in `output`).
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    collect(chunk);
    if (port !== undefined) return;
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const match = LISTENING_PORT.exec(line);
      if (match) port = Number(match[1]);
    }
  });
  child.stderr?.on('data', collect);
  const exited = new Promise<ServiceExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const scheme = options.https ? 'https' : 'http';
  return {
    name,
    get baseUrl() {
      if (port === undefined) throw new Error(`${name} has not said which port it listens on yet`);
      return `${scheme}://localhost:${port}`;
    },
    port: () => port,
    child,
    output: () => output,
    exited,
    async stop() {
      const started = performance.now();
      child.kill('SIGTERM');
      const exit = await exited;
      return { ...exit, ms: Math.round(performance.now() - started) };
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Polls `/health/ready` until it answers 200; fails at once if the process exits first. */
export async function waitUntilReady(
  service: ServiceProcess,
  options: { timeoutMs?: number; dispatcher?: Dispatcher } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 45_000);
  let exit: ServiceExit | undefined;
  void service.exited.then((e) => {
    exit = e;
  });
  while (Date.now() < deadline) {
    if (exit) {
      throw new Error(
        `${service.name} exited (${exit.code ?? exit.signal}) before it was ready:\n${service.output()}`,
      );
    }
    if (service.port() === undefined) {
      // Not listening yet.
      await sleep(100);
      continue;
    }
    try {
      const res = await request(`${service.baseUrl}/health/ready`, {
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
        headersTimeout: 2_000,
      });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error(`${service.name} was not ready in time:\n${service.output()}`);
}

/** Runs a service that is expected to refuse to start; resolves with its exit code and output. */
export async function runExpectingRefusal(
  name: ServiceName,
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<{ readonly code: number | null; readonly output: string }> {
  const service = startService(name, env);
  const timer = setTimeout(() => service.kill(), timeoutMs);
  try {
    const exit = await service.exited;
    return { code: exit.code, output: service.output() };
  } finally {
    clearTimeout(timer);
  }
}
