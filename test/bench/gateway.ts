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
 * Both servers run with the gateway's deployed Node flags (`NODE_FLAGS`; `BENCH_EXTRA_FLAGS` adds some, to
 * try a flag on both).
 *
 * `BENCH_ROUNDS` rounds (default 3) of `BENCH_DURATION` seconds per run (default 6), each round with fresh
 * servers: the table shows medians and every round's µs per event, and ratios are taken within a round. One
 * run of each moved ±15 % with this machine's load.
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
const DURATION_S = Number(process.env.BENCH_DURATION ?? 6);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

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
const NODE_FLAGS = ['--max-semi-space-size=64', ...(process.env.BENCH_EXTRA_FLAGS?.split(' ') ?? [])];

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

interface Scenario {
  readonly name: string;
  /** Events per request. */
  readonly events: number;
  readonly runs: Figures[];
}
const scenario = (name: string, events: number): Scenario => ({ name, events, runs: [] });
const bareRow = scenario('(a) bare node:http, JSON.parse → 202', 1);
const singleRow = scenario('(b) gateway /v1/t, durable publish', 1);
const batchRow = scenario('(c) gateway /v1/batch, 100 events', 100);
const sdkRow = scenario('(d) gateway /v1/batch, 10 events of one visitor (Datafly.js)', 10);

// Rounds, each with fresh servers: the machine's load drifts over a run, so a round measures every scenario
// close together in time, ratios are taken within a round, and the table shows medians over the rounds.
for (let round = 0; round < ROUNDS; round += 1) {
  const bare = await startServer('bare');
  await load(bare, '/', single); // warm-up
  bareRow.runs.push(await load(bare, '/', single));
  await bare.stop();

  const gw = await startServer('gateway');
  await load(gw, '/v1/t', single); // warm-up
  singleRow.runs.push(await load(gw, '/v1/t', single));
  batchRow.runs.push(await load(gw, '/v1/batch', benchBatchBody));
  sdkRow.runs.push(await load(gw, '/v1/batch', sdkBatches));
  await gw.stop();
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
const med = (row: Scenario, pick: (f: Figures) => number) => median(row.runs.map(pick));
/** Per round, then the median: a ratio of two figures measured minutes apart would mix in the load's drift. */
const medianRatio = (top: Scenario, bottom: Scenario, pick: (f: Figures, s: Scenario) => number) =>
  median(top.runs.map((f, i) => pick(f, top) / pick(bottom.runs[i] as Figures, bottom)));

console.log(
  `\n${DURATION_S}s per run, ${ROUNDS} rounds (medians), ${CONNECTIONS} connections, Node ${process.version} ${NODE_FLAGS.join(' ')}, 2 cores shared by server and load\n`,
);
console.log(
  '| scenario | req/s | events/s | p50 ms | p99 ms | non-2xx | server CPU µs/req | µs/event | µs/event, all rounds |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const row of [bareRow, singleRow, batchRow, sdkRow]) {
  const requests = med(row, (f) => f.requests);
  const cpu = med(row, (f) => f.cpuUsPerRequest);
  const all = row.runs.map((f) => (f.cpuUsPerRequest / row.events).toFixed(1)).join(' / ');
  console.log(
    `| ${row.name} | ${requests.toFixed(0)} | ${(requests * row.events).toFixed(0)} | ${med(row, (f) => f.p50)} | ${med(row, (f) => f.p99)} | ${row.runs.reduce((n, f) => n + f.non2xx, 0)} | ${cpu.toFixed(0)} | ${(cpu / row.events).toFixed(1)} | ${all} |`,
  );
}
const throughputBA = medianRatio(singleRow, bareRow, (f) => f.requests);
const cpuAB = medianRatio(bareRow, singleRow, (f) => f.cpuUsPerRequest);
const batchEvents = med(batchRow, (f) => f.requests) * batchRow.events;
const batchPerCore = 1e6 / (med(batchRow, (f) => f.cpuUsPerRequest) / batchRow.events);
console.log(
  `\nratio b/a = ${throughputBA.toFixed(2)} (target ≥ 0.5); batch = ${batchEvents.toFixed(0)} events/s (target ≥ 100000 per core)`,
);
console.log(
  `CPU per request: a/b = ${cpuAB.toFixed(2)} (the b/a ratio on a quiet core); batch at one full core ≈ ${batchPerCore.toFixed(0)} events/s`,
);
