/**
 * The embedded event bus on PGlite (on a temp dir): publish and consume throughput with group commit against
 * one transaction and one row per event, same process, same run.
 *
 *   pnpm bench bus        (runs: tsx test/bench/bus.ts)
 *
 * Events are ~500-byte canonical events on 8 partitions. Producers are 64 concurrent callers, as the gateway
 * publishes one request's events per call:
 * - baseline: group commit off (`maxFlushMessages: 1`): every publish call is its own transaction writing one
 *   segment row with one event — the "one row per event" design;
 * - group commit, 1 event per call (`/v1/t`): calls queue behind the running transaction and share the next;
 * - group commit, 100 events per call (`/v1/batch` from a server: 100 different visitors per call).
 * Every scenario seals its segments (v1 format, data class `bus`), as every deployment does; a comparison row
 * repeats the 100-per-call scenario with a pass-through codec to show what sealing costs.
 * - 100 events per call from one visitor (a browser's batches): the writer deflates such runs (ADR
 *   0011-compressed-bus-runs); a comparison row repeats it with compression off.
 * Consume: one subscription, batches of 500, committing after each. Figures are events/s; ratios against the
 * baseline measured in this run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// test/ has no package.json dependencies yet, so the packages are reached by path rather than by name.
import {
  type BusCrypto,
  busMigrations,
  createPostgresBus,
  type OutgoingMessage,
} from '../../packages/bus/src/index';
import { createCryptoService, createKeyring } from '../../packages/crypto/src/index';
import { createDatabase, type Database, migrate } from '../../packages/store/src/index';

const PARTITIONS = 8;
const PRODUCERS = 64;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** Visitor of the i-th event: 5,000 visitors interleaved, or (for SDK-like batches) one visitor per call. */
type Visitors = (i: number) => number;
const INTERLEAVED: Visitors = (i) => i % 5000;
const ONE_PER_CALL: Visitors = (i) => Math.floor(i / 100);

function eventValue(i: number, visitor: number): OutgoingMessage {
  const anonymousId = `6f1c2c3e-0d4b-4c84-9c1c-${String(visitor).padStart(12, '0')}`;
  const value = JSON.stringify({
    type: 'track',
    event: 'Product Viewed',
    anonymousId,
    messageId: `m-${i}-0d4b-4c84-9c1c-9f5a4e3b2a10`,
    properties: { product_id: `sku-${i % 977}`, price: 19.99, currency: 'EUR', category: 'shoes' },
    traits: {},
    context: {
      ip: '203.0.113.7',
      userAgent:
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15',
      page: { url: 'https://shop.example/p/sku', referrer: 'https://www.google.com/' },
      consent: { categories: { analytics: true, marketing: true } },
      provenance: 'pipeline_key',
    },
    timestamp: '2025-01-02T03:04:05.678Z',
    receivedAt: '2025-01-02T03:04:05.900Z',
    org: 'org_1',
    pipelineId: 'pl_1',
  });
  return { key: anonymousId, value };
}

interface Result {
  readonly name: string;
  readonly events: number;
  readonly publishPerSec: number;
  readonly consumePerSec: number;
  readonly rows: number;
}

async function scenario(
  db: Database,
  name: string,
  events: number,
  perCall: number,
  settings: { maxFlushMessages?: number; compressRuns?: boolean },
  crypto: BusCrypto = SEALING,
  visitors: Visitors = INTERLEAVED,
): Promise<Result> {
  const topic = `bench-${name.replace(/[^a-z0-9]+/gi, '-')}`;
  const bus = createPostgresBus({ db, logger: silent, crypto, pollIntervalMs: 5, ...settings });
  await bus.createTopics([{ name: topic, partitions: PARTITIONS }]);
  const messages = Array.from({ length: events }, (_, i) => eventValue(i, visitors(i)));

  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (next < events) {
        const from = next;
        next += perCall;
        // Only the one-visitor scenario is what one gateway request publishes (ADR 0011).
        await bus.publish(topic, messages.slice(from, Math.min(from + perCall, events)), {
          compressible: visitors === ONE_PER_CALL,
        });
      }
    }),
  );
  const publishMs = performance.now() - t0;

  let consumed = 0;
  let done = (): void => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const t1 = performance.now();
  const subscription = await bus.subscribe({
    groupId: `g-${topic}`,
    topics: [topic],
    batchSize: 500,
    handler: async (batch) => {
      consumed += batch.messages.length;
      if (consumed >= events) done();
    },
  });
  await finished;
  const consumeMs = performance.now() - t1;
  await subscription.stop();
  await bus.close();

  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM bus_segments WHERE topic = $1',
    [topic],
  );
  return {
    name,
    events,
    publishPerSec: (events / publishMs) * 1000,
    consumePerSec: (events / consumeMs) * 1000,
    rows: Number(rows[0]?.n ?? 0),
  };
}

const SEALING: BusCrypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });
/** Comparison only: stores segments as they are (what the bus did before sealing). Never used by a service. */
const bytesOf = (data: Uint8Array | string): Buffer =>
  typeof data === 'string'
    ? Buffer.from(data, 'utf8')
    : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
const PASS_THROUGH: BusCrypto = {
  keyring: { currentKeyId: 'plaintext' },
  seal: (plaintext) => bytesOf(plaintext),
  open: (ciphertext) => bytesOf(ciphertext),
  sealText: (plaintext) => bytesOf(plaintext).toString('utf8'),
  openText: (text) => Buffer.from(text, 'utf8'),
};

const root = await mkdtemp(join(tmpdir(), 'signal-bench-bus-'));
try {
  const db = await createDatabase({ kind: 'pglite', dataDir: join(root, 'data') });
  await migrate(db, busMigrations);
  // Warm-up: JIT, PGlite caches, first topic creation.
  await scenario(db, 'warm-up', 2000, 1, {});
  const results = [
    await scenario(db, 'baseline: 1 tx + 1 row per event', 5_000, 1, { maxFlushMessages: 1 }),
    await scenario(db, 'group commit, 1 event per call', 50_000, 1, {}),
    await scenario(db, 'group commit, 100 events per call', 100_000, 100, {}),
    await scenario(db, 'same, sealing off (comparison)', 100_000, 100, {}, PASS_THROUGH),
    await scenario(db, '100 per call, one visitor per call', 100_000, 100, {}, SEALING, ONE_PER_CALL),
    await scenario(
      db,
      'same, compression off (comparison)',
      100_000,
      100,
      { compressRuns: false },
      SEALING,
      ONE_PER_CALL,
    ),
  ];
  await db.close();

  const base = results[0] as Result;
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);
  console.log(`PGlite on disk, ${PARTITIONS} partitions, ${PRODUCERS} concurrent producers, ~500 B events\n`);
  console.log(
    `${'scenario'.padEnd(36)} ${'events'.padStart(8)} ${'rows'.padStart(7)} ${'publish/s'.padStart(9)} ${'ratio'.padStart(6)} ${'consume/s'.padStart(9)} ${'ratio'.padStart(6)}`,
  );
  for (const r of results) {
    console.log(
      `${r.name.padEnd(36)} ${String(r.events).padStart(8)} ${String(r.rows).padStart(7)} ${fmt(r.publishPerSec)} ${`${(r.publishPerSec / base.publishPerSec).toFixed(1)}x`.padStart(6)} ${fmt(r.consumePerSec)} ${`${(r.consumePerSec / base.consumePerSec).toFixed(1)}x`.padStart(6)}`,
    );
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
