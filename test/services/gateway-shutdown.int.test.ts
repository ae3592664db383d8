/**
 * SIGTERM under load loses no acknowledged event (ARCHITECTURE §6: 202 only after the bus durably accepted
 * the event; graceful shutdown stops intake, drains in-flight work, then closes clients).
 *
 * The gateway runs as its own process on PostgreSQL + Redis with the postgres bus. Thirty concurrent senders
 * post events and record every messageId a 202 acknowledged; the gateway gets SIGTERM mid-load. After it
 * exited, a fresh consumer group reads raw-events back through the bus adapter: every acknowledged event is
 * there, and every request that was not acknowledged got a 503 or a connection error — never a 202 that
 * was then lost. One request is deliberately in flight across the signal (its body still uploading): the
 * gateway stops taking connections first, then lets that request finish with a 202.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPostgresBus } from '@signal/bus';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { topics } from '@signal/events';
import { postgresAvailable, redisAvailable } from '@signal/testkit';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDeployment, type TestDeployment } from './support/deployment';
import { type SeededPipeline, seedPipeline } from './support/seed';
import { type ServiceProcess, startService, waitUntilReady } from './support/service-process';

const available = (await postgresAvailable()) && (await redisAvailable());

const SENDERS = 30;
/** Acknowledged events before the signal, so that it lands in the middle of steady load. */
const ACKED_BEFORE_SIGNAL = 300;
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
/** What a client may see from a gateway that is going away, besides a 503. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

const silent = { debug() {}, info() {}, warn() {}, error() {} };

interface LoadRecord {
  readonly acked: string[];
  ackedAfterSignal: number;
  readonly statuses: Map<number, number>;
  readonly errors: Map<string, number>;
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** True once a new TCP connection to the port is refused: the listener is closed. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

interface SlowUpload {
  /** Sends the rest of the body. */
  finish(): void;
  readonly response: Promise<{ status: number; body: string }>;
}

/** A POST whose headers and first half of the body are sent now, the rest when `finish` is called. */
function startSlowUpload(port: number, pipelineKey: string): SlowUpload {
  const body = Buffer.from(
    JSON.stringify({
      type: 'track',
      event: 'Uploaded Across SIGTERM',
      anonymousId: 'slow-upload',
      context: { page: { url: 'https://shop.example/slow' } },
    }),
  );
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/v1/t',
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'x-pipeline-key': pipelineKey,
      'user-agent': BROWSER_UA,
    },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  const half = Math.floor(body.length / 2);
  req.write(body.subarray(0, half));
  return { finish: () => req.end(body.subarray(half)), response };
}

/** Every messageId durably on the raw-events topic, read with a consumer group of its own. */
async function storedMessageIds(deployment: TestDeployment): Promise<Set<string>> {
  const topic = topics.rawEvents(deployment.namespace).name;
  const high = await deployment.db.query<{ total: string | null }>(
    'SELECT sum(next_offset)::text AS total FROM bus_partitions WHERE topic = $1',
    [topic],
  );
  const total = Number(high.rows[0]?.total ?? 0);
  // The deployment's key: the gateway sealed what it wrote.
  const crypto = createCryptoService({
    keyring: createKeyring({ current: Buffer.from(deployment.encryptionKey, 'hex') }),
  });
  const bus = createPostgresBus({ db: deployment.db, logger: silent, crypto, pollIntervalMs: 20 });
  const ids = new Set<string>();
  let consumed = 0;
  const subscription = await bus.subscribe({
    groupId: `verify-${randomBytes(4).toString('hex')}`,
    topics: [topic],
    batchSize: 1000,
    handler: async (batch) => {
      for (const message of batch.messages) {
        consumed += 1;
        const value = JSON.parse(message.value) as { messageId?: unknown };
        if (typeof value.messageId === 'string') ids.add(value.messageId);
      }
    },
  });
  const deadline = Date.now() + 20_000;
  while (consumed < total && Date.now() < deadline) await sleep(20);
  await subscription.stop({ deadlineMs: 5_000 });
  await bus.close();
  expect(consumed, 'every stored record was read back').toBe(total);
  return ids;
}

describe.skipIf(!available)('ingestion gateway: SIGTERM under load', () => {
  let deployment: TestDeployment;
  let seeded: SeededPipeline;
  let gateway: ServiceProcess | undefined;

  beforeAll(async () => {
    deployment = await createTestDeployment({ migrate: true });
    seeded = await seedPipeline(deployment);
  });
  afterAll(async () => {
    gateway?.kill();
    await deployment?.cleanup();
  });

  it('loses no acknowledged event: every 202 messageId is on raw-events; the rest got 503 or a connection error', async () => {
    gateway = startService('ingestion-gateway', deployment.env({ PORT: '0', RATE_LIMIT_RPS: '1000000' }));
    await waitUntilReady(gateway);
    const port = gateway.port() ?? 0;
    const service = gateway;

    const agent = new Agent({ connections: SENDERS, keepAliveTimeout: 10_000 });
    const record: LoadRecord = { acked: [], ackedAfterSignal: 0, statuses: new Map(), errors: new Map() };
    let signalled = false;
    let running = true;
    void service.exited.then(() => {
      running = false;
    });

    async function sender(index: number): Promise<void> {
      let seq = 0;
      while (running) {
        seq += 1;
        try {
          const res = await request(`${service.baseUrl}/v1/t`, {
            method: 'POST',
            dispatcher: agent,
            headers: {
              'content-type': 'application/json',
              'x-pipeline-key': seeded.pipelineKey,
              'user-agent': BROWSER_UA,
            },
            body: JSON.stringify({
              type: 'track',
              event: 'Load Test',
              anonymousId: `load-${index}`,
              properties: { sender: index, seq },
              context: { page: { url: 'https://shop.example/load' } },
            }),
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          });
          const text = await res.body.text();
          bump(record.statuses, res.statusCode);
          if (res.statusCode === 202) {
            const ids = (JSON.parse(text) as { messageIds: string[] }).messageIds;
            record.acked.push(...ids);
            if (signalled) record.ackedAfterSignal += ids.length;
          }
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          bump(record.errors, typeof code === 'string' ? code : String(err));
          // The gateway is going away: retry as a client would, without spinning.
          await sleep(5);
        }
      }
    }

    const loadStarted = performance.now();
    const senders = Array.from({ length: SENDERS }, (_, i) => sender(i));
    while (record.acked.length < ACKED_BEFORE_SIGNAL / 2 && running) await sleep(5);
    const slow = startSlowUpload(port, seeded.pipelineKey);
    // Many more requests served after the slow one's headers went out: the gateway is inside its handler,
    // waiting for the rest of the body.
    while (record.acked.length < ACKED_BEFORE_SIGNAL && running) await sleep(5);
    const ackedAtSignal = record.acked.length;
    const loadMs = performance.now() - loadStarted;
    signalled = true;
    const stopping = service.stop();
    // Intake stops first: new connections are refused while the slow request is still uploading.
    const refusedBy = Date.now() + 10_000;
    let refused = false;
    while (!refused && Date.now() < refusedBy) {
      refused = await refusesConnections(port);
      if (!refused) await sleep(10);
    }
    slow.finish();
    const slowAnswer = await slow.response.catch((err: unknown) => ({
      status: -1,
      body:
        err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : String(err),
    }));
    const exit = await stopping;
    running = false;
    await Promise.all(senders);
    await agent.close();

    const stored = await storedMessageIds(deployment);
    const lost = record.acked.filter((id) => !stored.has(id));
    console.info(
      `[gateway SIGTERM] ${record.acked.length} acknowledged (${ackedAtSignal} in ${Math.round(loadMs)} ms before the signal, ` +
        `${record.ackedAfterSignal} drained after it, plus the upload in flight across it: ${slowAnswer.status}), ` +
        `${stored.size} on raw-events, ${lost.length} lost; statuses ${JSON.stringify(Object.fromEntries(record.statuses))}, ` +
        `client errors ${JSON.stringify(Object.fromEntries(record.errors))}; stopped in ${exit.ms} ms`,
    );

    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(ackedAtSignal).toBeGreaterThanOrEqual(ACKED_BEFORE_SIGNAL);
    expect(refused, 'the listener closed after SIGTERM').toBe(true);
    // The request in flight across the signal was drained, not cut off, and its event is durable.
    expect(slowAnswer.status, slowAnswer.body).toBe(202);
    const slowIds = (JSON.parse(slowAnswer.body) as { messageIds: string[] }).messageIds;
    expect(slowIds).toHaveLength(1);
    for (const status of record.statuses.keys()) expect([202, 503]).toContain(status);
    for (const code of record.errors.keys()) expect(CONNECTION_ERRORS).toContain(code);

    expect(lost, `${lost.length} acknowledged events missing from raw-events`).toEqual([]);
    expect(stored.has(slowIds[0] ?? '')).toBe(true);
    expect(new Set(record.acked).size).toBe(record.acked.length);
  }, 90_000);
});
