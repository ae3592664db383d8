/**
 * `pnpm bench gateway`: (a) a bare node:http server doing JSON.parse → 202, (b) the gateway's single-event
 * endpoint with full validation and a durable publish on the embedded bus, (c) /v1/batch with 100 events
 * (a server sending 100 visitors' events), and for comparison (d) what browsers send: /v1/batch with 10 events
 * of one visitor, 1,000 visitors in turn (their runs are compressed inside the sealed segment, ADR 0011).
 * Each server runs in its own process; autocannon drives it from this one. Prints req/s, events/s, p50/p99
 * and the ratio b/a. Targets: b/a ≥ 0.5; batch ≥ 100K events/s per core.
 *
 * The CPU is shared (load generator, other processes), so throughput moves with the machine's load. Each row
 * also reports the server process's own CPU time per request and per event (user + system, from
 * /proc/<pid>/stat), which depends far less on what else runs: compare changes by that column.
 *
 * Both servers run with the gateway's deployed Node flags (`NODE_FLAGS`).
 *
 * `BENCH_PROFILE=<dir>` also writes a V8 CPU profile of each measured run (load only, no start-up) there.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { benchBatchBody, benchEvent } from './support/bench-events';
import { BENCH_KEY } from './support/bench-key';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

const single = JSON.stringify(benchEvent(1));
/** What Datafly.js sends: a batch of up to `batchSize` (10) events of one visitor; 1,000 visitors in turn. */
const sdkBatches = Array.from({ length: 1000 }, (_, v) =>
  JSON.stringify({
    batch: Array.from({ length: 10 }, (_, i) => ({
      ...benchEvent(v),
      event: ['page_view', 'view_item', 'add_to_cart', 'begin_checkout', 'purchase'][i % 5],
      messageId: `sdk-${v}-${i}`,
    })),
  }),
);

/**
 * Node flags of both servers: the gateway's as deployed (`pnpm start`, the Dockerfile), and the same for the
 * bare server so that the ratio compares the work, not the heap settings.
 */
const NODE_FLAGS = ['--max-semi-space-size=64'];

interface Server {
  readonly port: number;
  readonly pid: number;
  /** The first line the server prints from now on that matches `pattern`. */
  nextLine(pattern: RegExp): Promise<string>;
  stop(): Promise<void>;
}

async function startServer(mode: 'bare' | 'gateway'): Promise<Server> {
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, '--import', 'tsx', join(here, 'support', 'gateway-server.ts'), mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...(PROFILE_DIR ? { BENCH_PROFILE: resolve(PROFILE_DIR) } : {}) },
    },
  );
  const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  lines.on('line', (line) => {
    const i = waiting.findIndex((w) => w.pattern.test(line));
    if (i >= 0) waiting.splice(i, 1)[0]?.resolve(line);
  });
  const nextLine = (pattern: RegExp) =>
    new Promise<string>((resolveLine) => waiting.push({ pattern, resolve: resolveLine }));
  const port = await new Promise<number>((resolvePort, reject) => {
    nextLine(/^PORT \d+$/).then((line) => resolvePort(Number(line.slice(5))));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    port,
    pid: child.pid ?? 0,
    nextLine,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** User + system CPU time of a process in microseconds (Linux /proc; NaN elsewhere). */
function cpuMicros(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of stat; after the ") " split they are at 11 and 12.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks / 100) * 1e6; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

interface Figures {
  readonly requests: number;
  readonly cpuUsPerRequest: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
}

const PROFILE_DIR = process.env.BENCH_PROFILE;

/** `bodies`: one body for every request, or several sent in turn. */
async function load(server: Server, path: string, bodies: string | readonly string[]): Promise<Figures> {
  const { port } = server;
  if (PROFILE_DIR) process.kill(server.pid, 'SIGUSR2');
  const cpuBefore = cpuMicros(server.pid);
  let next = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    method: 'POST',
    ...(typeof bodies === 'string'
      ? { body: bodies }
      : {
          requests: [
            {
              setupRequest: (request: autocannon.Request) => {
                next = (next + 1) % bodies.length;
                return { ...request, body: bodies[next] };
              },
            },
          ],
        }),
    headers: { 'content-type': 'application/json', 'x-pipeline-key': BENCH_KEY },
    connections: CONNECTIONS,
    duration: DURATION_S,
  });
  const cpu = cpuMicros(server.pid) - cpuBefore;
  if (PROFILE_DIR) {
    process.kill(server.pid, 'SIGUSR1');
    console.error(await server.nextLine(/^PROFILE (.+)$/));
  }
  return {
    requests: result.requests.average,
    cpuUsPerRequest: cpu / Math.max(1, result.requests.total),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
  };
}

const rows: [string, Figures, number][] = [];
const bare = await startServer('bare');
await load(bare, '/', single); // warm-up
rows.push(['(a) bare node:http, JSON.parse → 202', await load(bare, '/', single), 1]);
await bare.stop();

const gw = await startServer('gateway');
await load(gw, '/v1/t', single);
rows.push(['(b) gateway /v1/t, durable publish', await load(gw, '/v1/t', single), 1]);
rows.push(['(c) gateway /v1/batch, 100 events', await load(gw, '/v1/batch', benchBatchBody), 100]);
rows.push([
  '(d) gateway /v1/batch, 10 events of one visitor (Datafly.js)',
  await load(gw, '/v1/batch', sdkBatches),
  10,
]);
await gw.stop();

console.log(
  `\n${DURATION_S}s per run, ${CONNECTIONS} connections, Node ${process.version} ${NODE_FLAGS.join(' ')}, 2 cores shared by server and load\n`,
);
console.log('| scenario | req/s | events/s | p50 ms | p99 ms | non-2xx | server CPU µs/req | µs/event |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, f, perRequest] of rows) {
  console.log(
    `| ${name} | ${f.requests.toFixed(0)} | ${(f.requests * perRequest).toFixed(0)} | ${f.p50} | ${f.p99} | ${f.non2xx} | ${f.cpuUsPerRequest.toFixed(0)} | ${(f.cpuUsPerRequest / perRequest).toFixed(1)} |`,
  );
}
const a = rows[0]?.[1].requests ?? 1;
const b = rows[1]?.[1].requests ?? 0;
const c = (rows[2]?.[1].requests ?? 0) * 100;
const cpuA = rows[0]?.[1].cpuUsPerRequest ?? Number.NaN;
const cpuB = rows[1]?.[1].cpuUsPerRequest ?? Number.NaN;
const cpuC = (rows[2]?.[1].cpuUsPerRequest ?? Number.NaN) / 100;
console.log(
  `\nratio b/a = ${(b / a).toFixed(2)} (target ≥ 0.5); batch = ${c.toFixed(0)} events/s (target ≥ 100000 per core)`,
);
console.log(
  `CPU per request: a/b = ${(cpuA / cpuB).toFixed(2)} (the b/a ratio on a quiet core); batch at one full core ≈ ${(1e6 / cpuC).toFixed(0)} events/s`,
);
