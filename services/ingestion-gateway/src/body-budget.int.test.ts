import { randomBytes } from 'node:crypto';
import { type ClientRequest, request as rawRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, busMigrations, createPostgresBus, type OutgoingMessage } from '@signal/bus';
import { createMemoryCache } from '@signal/cache';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createRouter, createServer, type SignalHttpServer } from '@signal/http';
import { buildSdk } from '@signal/sdk';
import { createDatabase, type Database, migrate } from '@signal/store';
import { createMetrics, type Metrics } from '@signal/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from './gateway';
import type { PipelineAuth } from './pipelines/pipeline-directory';

/**
 * MAX_BUFFERED_BODY_BYTES on the real gateway (embedded bus on PGlite): while senders hold the budget, a
 * further body is refused with 503 and nothing of it is published, a bad key in the header is still told
 * 401 (it is checked before the body is read), and once the budget frees up requests are accepted again.
 */

const NAMESPACE = `gwb${randomBytes(3).toString('hex')}`;
const KEY = `dk_test_${'b1C2d3E4f5G6h7J8'.repeat(2)}`;
const UNKNOWN_KEY = `dk_test_${'unknownUnknown00'.repeat(2)}`;
const ORIGIN = 'https://shop.example.com';
const BODY_LIMIT = 16 * 1024;

const pipeline: PipelineAuth = {
  orgId: 'org_demo',
  pipelineId: 'pl_web',
  type: 'web',
  enabled: true,
  keyStatus: 'active',
  allowedDomains: ['example.com'],
  rateLimitRps: null,
  hmacSecrets: [],
};

let db: Database;
let bus: Bus;
let server: SignalHttpServer;
let port: number;
let metrics: Metrics;
const published: OutgoingMessage[] = [];

beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, busMigrations);
  bus = createPostgresBus({
    db,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
  });
  metrics = createMetrics({ processMetrics: false });
  const gateway = createGateway({
    config: {
      namespace: NAMESPACE,
      cookieDomain: null,
      corsOrigins: [],
      maxBatchSize: 10,
      maxPayloadSize: BODY_LIMIT,
      // Four bodies' worth; one client address may hold a quarter (one body).
      maxBufferedBodyBytes: 4 * BODY_LIMIT,
      rateLimitRps: 1000,
      // The client is told by X-Forwarded-For, so that one test can be several clients.
      trustedProxyHops: 1,
    },
    directory: { findPipelineByKey: async (key) => (key === KEY ? pipeline : null) },
    bus: {
      maxMessageBytes: bus.maxMessageBytes,
      async publish(topic, messages, options) {
        const receipts = await bus.publish(topic, messages, options);
        published.push(...messages);
        return receipts;
      },
    },
    cache: createMemoryCache({ namespace: NAMESPACE }),
    sdk: await buildSdk(),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    metrics,
  });
  const router = createRouter();
  gateway.register(router);
  server = createServer({ handler: (req, res) => router.handle(req, res) });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close(1000);
  await bus?.close();
  await db?.close();
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { error?: { code: string } };
}

function send(req: ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }),
      );
    });
    // A refused body is not read: the gateway may close before the client finished writing.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
  });
}

function open(body: string, client: string, key = KEY): { req: ClientRequest; answer: Promise<Answer> } {
  const req = rawRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/t',
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      origin: ORIGIN,
      'x-pipeline-key': key,
      'x-forwarded-for': client,
    },
  });
  return { req, answer: send(req) };
}

function post(body: string, client: string, key = KEY): Promise<Answer> {
  const { req, answer } = open(body, client, key);
  req.end(body);
  return answer;
}

/** A purchase about `padding` bytes larger than bare (in 100-character notes: strings have a length limit). */
const event = (id: string, padding = 0) =>
  JSON.stringify({
    event: 'purchase',
    messageId: id,
    properties: { notes: Array.from({ length: Math.ceil(padding / 103) }, () => 'x'.repeat(100)) },
  });

async function serverBusyRefusals(): Promise<number> {
  const rejected = await metrics.registry.getSingleMetric('signal_events_rejected_total')?.get();
  return rejected?.values.find((v) => v.labels.reason === 'server_busy')?.value ?? 0;
}

/** A sender that declares `body`, sends its first bytes and holds the rest back until `finish`. */
function slowSender(body: string, client: string) {
  const { req, answer } = open(body, client);
  req.write(body.slice(0, 10));
  return {
    finish: () => {
      req.end(body.slice(10));
      return answer;
    },
  };
}

/**
 * Sends malformed bodies from `client` with a good key until one is refused for want of room: they publish
 * nothing either way (400 once read, 503 while no room is left).
 */
async function untilRefused(client: string, size: number): Promise<Answer | undefined> {
  let probe: Answer | undefined;
  for (let i = 0; i < 200 && probe?.status !== 503; i++) {
    probe = await post(`{${'x'.repeat(size)}`, client);
    if (probe.status !== 503) await sleep(10);
  }
  return probe;
}

const messageIds = () => published.map((m) => (JSON.parse(m.value) as { messageId: string }).messageId);

describe('gateway body budget (MAX_BUFFERED_BODY_BYTES)', () => {
  it('refuses bodies that do not fit with 503 and publishes nothing of them, then accepts again', async () => {
    // Four slow senders from four addresses, 15 KB each declared: 60 of the 64 KB budget.
    const slow = Array.from({ length: 4 }, (_, i) =>
      slowSender(event(`slow-${i}`, 15_000), `198.51.100.${i + 1}`),
    );
    expect((await untilRefused('198.51.100.9', 9000))?.status).toBe(503);

    const busy = await post(event('busy-1', 9000), '198.51.100.10');
    expect(busy.status).toBe(503);
    expect(busy.body.error?.code).toBe('unavailable');
    expect(busy.headers['retry-after']).toBe('1');
    expect(busy.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(await serverBusyRefusals()).toBeGreaterThanOrEqual(2);
    // A small body still fits.
    expect((await post(event('small-1'), '198.51.100.10')).status).toBe(202);

    // A bad key is refused before its body would be read: 401, not 503, even now.
    expect((await post(event('bad-key', 9000), '198.51.100.10', UNKNOWN_KEY)).status).toBe(401);

    for (const sender of slow) expect((await sender.finish()).status).toBe(202);
    // Released when the slow senders' responses closed.
    let after: Answer | undefined;
    for (let i = 0; i < 100 && after?.status !== 202; i++) {
      after = await post(event(`after-${i}`, 9000), '198.51.100.10');
      if (after.status !== 202) await sleep(10);
    }
    expect(after?.status).toBe(202);

    expect(messageIds()).toEqual(expect.arrayContaining(['slow-0', 'slow-3', 'small-1']));
    expect(messageIds()).not.toContain('busy-1');
    expect(messageIds()).not.toContain('bad-key');
  });

  it('lets one client address hold only a quarter of the budget, so it cannot crowd out the others', async () => {
    const slow = slowSender(event('hog-slow', 10_000), '203.0.113.5');
    // The same address, a second 10 KB body: over its share although the budget has room.
    expect((await untilRefused('203.0.113.5', 9000))?.status).toBe(503);
    expect((await post(event('hog-second', 9000), '203.0.113.5')).status).toBe(503);
    // Another client is not affected.
    expect((await post(event('neighbour', 9000), '203.0.113.77')).status).toBe(202);
    expect((await slow.finish()).status).toBe(202);
    expect(messageIds()).toEqual(expect.arrayContaining(['hog-slow', 'neighbour']));
    expect(messageIds()).not.toContain('hog-second');
  });
});
