/**
 * `pnpm bench gateway`: (a) a bare node:http server doing JSON.parse → 202, (b) the gateway's single-event
 * endpoint with full validation and a durable publish on the embedded bus, (c) /v1/batch with 100 events.
 * Each server runs in its own process; autocannon drives it from this one. Prints req/s, events/s, p50/p99
 * and the ratio b/a. Targets: b/a ≥ 0.5; batch ≥ 100K events/s per core.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { BENCH_KEY } from './support/bench-key';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

const event = (i: number) => ({
  type: 'track',
  event: 'purchase',
  anonymousId: `anon-bench-${String(i % 1000).padStart(8, '0')}`,
  properties: { value: 42.5, currency: 'EUR', items: [{ item_id: 'sku-1', price: 42.5, quantity: 1 }] },
  context: {
    page: { url: 'https://shop.example.com/checkout?gclid=abc', referrer: 'https://www.google.com/' },
    consent: { categories: { analytics: true, marketing: true } },
  },
});
const single = JSON.stringify(event(1));
const batch = JSON.stringify({ batch: Array.from({ length: 100 }, (_, i) => event(i)) });

async function startServer(mode: 'bare' | 'gateway') {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'support', 'gateway-server.ts'), mode],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c) => {
      out += String(c);
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1]) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

interface Figures {
  readonly requests: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
}

async function load(port: number, path: string, body: string): Promise<Figures> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'x-pipeline-key': BENCH_KEY },
    connections: CONNECTIONS,
    duration: DURATION_S,
  });
  return {
    requests: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
  };
}

const rows: [string, Figures, number][] = [];
const bare = await startServer('bare');
await load(bare.port, '/', single); // warm-up
rows.push(['(a) bare node:http, JSON.parse → 202', await load(bare.port, '/', single), 1]);
await bare.stop();

const gw = await startServer('gateway');
await load(gw.port, '/v1/t', single);
rows.push(['(b) gateway /v1/t, durable publish', await load(gw.port, '/v1/t', single), 1]);
rows.push(['(c) gateway /v1/batch, 100 events', await load(gw.port, '/v1/batch', batch), 100]);
await gw.stop();

console.log(
  `\n${DURATION_S}s per run, ${CONNECTIONS} connections, Node ${process.version}, 2 cores shared by server and load\n`,
);
console.log('| scenario | req/s | events/s | p50 ms | p99 ms | non-2xx |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, f, perRequest] of rows) {
  console.log(
    `| ${name} | ${f.requests.toFixed(0)} | ${(f.requests * perRequest).toFixed(0)} | ${f.p50} | ${f.p99} | ${f.non2xx} |`,
  );
}
const a = rows[0]?.[1].requests ?? 1;
const b = rows[1]?.[1].requests ?? 0;
const c = (rows[2]?.[1].requests ?? 0) * 100;
console.log(
  `\nratio b/a = ${(b / a).toFixed(2)} (target ≥ 0.5); batch = ${c.toFixed(0)} events/s (target ≥ 100000 per core)`,
);
