/**
 * One server for `pnpm bench gateway`, run in its own process so the load generator does not share its
 * event loop. argv[2]: `bare` (node:http, JSON.parse, 202) or `gateway` (the real gateway: validation,
 * stamping and a durable publish on the embedded PostgreSQL bus over PGlite on disk). Prints the port.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNodeServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busMigrations, createPostgresBus } from '../../../packages/bus/src/index';
import { createMemoryCache } from '../../../packages/cache/src/index';
import { createCryptoService, createKeyring } from '../../../packages/crypto/src/index';
import { createRouter, createServer } from '../../../packages/http/src/index';
import { buildSdk } from '../../../packages/sdk/src/index';
import { createDatabase, migrate } from '../../../packages/store/src/index';
import { createMetrics } from '../../../packages/telemetry/src/index';
import { createGateway } from '../../../services/ingestion-gateway/src/gateway';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * `BENCH_PROFILE=<dir>`: the driver sends SIGUSR2 before a measured run (start the V8 CPU profiler) and
 * SIGUSR1 after it (write `<dir>/<label>.cpuprofile`), so the profile holds the load only, not start-up.
 */
const profileDir = process.env.BENCH_PROFILE;
if (profileDir) {
  const session = new Session();
  session.connect();
  let label = 0;
  process.on('SIGUSR2', async () => {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  });
  process.on('SIGUSR1', async () => {
    const { profile } = await session.post('Profiler.stop');
    label += 1;
    const file = join(profileDir, `gateway-${process.argv[2]}-${label}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    process.stdout.write(`PROFILE ${file}\n`);
  });
}

const mode = process.argv[2];
if (mode === 'bare') {
  const server = createNodeServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{"accepted":1}');
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
} else if (mode === 'gateway') {
  const dir = mkdtempSync(join(tmpdir(), 'signal-bench-gw-'));
  const db = await createDatabase({ kind: 'pglite', dataDir: dir });
  await migrate(db, busMigrations);
  // Sealed like every deployment's bus: the figure includes the cost of encrypting the segments.
  const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
  const bus = createPostgresBus({ db, logger: quiet, crypto });
  const gateway = createGateway({
    config: {
      namespace: 'bench',
      cookieDomain: null,
      corsOrigins: [],
      maxBatchSize: 500,
      maxPayloadSize: 524_288,
      rateLimitRps: 10_000_000,
      trustedProxyHops: 0,
    },
    directory: {
      findPipelineByKey: async () => ({
        orgId: 'org_bench',
        pipelineId: 'pl_bench',
        type: 'web',
        enabled: true,
        keyStatus: 'active',
        allowedDomains: ['example.com'],
        rateLimitRps: null,
        hmacSecrets: [],
      }),
    },
    bus:
      process.env.BENCH_NOOP_BUS === '1'
        ? { maxMessageBytes: bus.maxMessageBytes, publish: async () => [] }
        : bus,
    cache: createMemoryCache({ namespace: 'bench' }),
    sdk: await buildSdk(),
    logger: quiet,
    metrics: createMetrics({ processMetrics: false }),
  });
  const router = createRouter();
  gateway.register(router);
  const server = createServer({ handler: (req, res) => router.handle(req, res) });
  const { port } = await server.listen(0, '127.0.0.1');
  process.stdout.write(`PORT ${port}\n`);
  process.on('SIGTERM', async () => {
    await server.close(1000);
    await bus.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
} else {
  process.stderr.write('usage: gateway-server.ts bare|gateway\n');
  process.exit(2);
}
