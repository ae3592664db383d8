import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Bus,
  busMigrations,
  type ConsumedMessage,
  createPostgresBus,
  type OutgoingMessage,
  segmentContext,
} from '../src/index';
import { encodeSegment } from '../src/postgres/segment';
import { collect, randomId, recordingLogger, testCrypto, waitFor } from './helpers';
import { TEST_TIMINGS } from './timings';

/**
 * ADR 0011-compressed-bus-runs, end to end on PGlite: a visitor's batch (one publish call, one key) is
 * stored compressed and consumed unchanged; two calls are never compressed together, even with one key in
 * one group commit.
 */
const batch = (visitor: string, n: number, tag: string): OutgoingMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    key: visitor,
    value: JSON.stringify({
      type: 'track',
      event: 'purchase',
      anonymousId: visitor,
      messageId: `${tag}-${i}`,
      properties: { value: i, currency: 'EUR', items: [{ item_id: `sku-${i}`, price: 42.5 }] },
      context: { page: { url: 'https://shop.example/checkout?gclid=abc' }, consent: { categories: {} } },
    }),
  }));

const ONE_REQUEST = { compressible: true } as const;

describe('postgres bus: compressed runs (PGlite)', () => {
  let root: string;
  let db: Database;
  let bus: Bus;
  const crypto = testCrypto();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'signal-bus-compression-'));
    db = await createDatabase({ kind: 'pglite', dataDir: join(root, 'pglite') });
    await migrate(db, busMigrations);
    bus = createPostgresBus({ db, logger: recordingLogger(), crypto, ...TEST_TIMINGS });
  });
  afterAll(async () => {
    await bus.close();
    await db.close();
    await rm(root, { recursive: true, force: true });
  });

  const segments = async (topic: string) => {
    const { rows } = await db.query<{ partition: number; base_offset: string; payload: Buffer }>(
      'SELECT partition, base_offset::text, payload FROM bus_segments WHERE topic = $1 ORDER BY base_offset',
      [topic],
    );
    return rows.map((r) => ({
      stored: r.payload.length,
      plain: crypto.open(
        r.payload,
        segmentContext({ topic, partition: r.partition, baseOffset: Number(r.base_offset) }),
      ),
    }));
  };

  it("stores a visitor's batch compressed and hands every message back unchanged, in order", async () => {
    const topic = randomId('t');
    await bus.createTopics([{ name: topic, partitions: 1 }]);
    const sent = batch('anon-1', 100, 'a');
    await bus.publish(topic, sent, ONE_REQUEST);

    const [segment] = await segments(topic);
    const raw = sent.reduce((n, m) => n + m.key.length + m.value.length, 0);
    expect(segment?.plain[0]).toBe(0x03);
    expect(segment?.stored).toBeLessThan(raw / 4);

    const seen: ConsumedMessage[] = [];
    await collect(bus, randomId('g'), topic, seen);
    await waitFor(() => seen.length === 100, 'all 100 messages');
    expect(seen.map((m) => [m.key, m.value])).toEqual(sent.map((m) => [m.key, m.value]));
  });

  it('compresses two calls separately even when they share a key and a group commit', async () => {
    const topic = randomId('t');
    await bus.createTopics([{ name: topic, partitions: 1 }]);
    const first = batch('anon-1', 40, 'x');
    const second = batch('anon-1', 40, 'y');
    // Submitted in the same turn: one flush, one segment.
    await Promise.all([bus.publish(topic, first, ONE_REQUEST), bus.publish(topic, second, ONE_REQUEST)]);

    const stored = await segments(topic);
    expect(stored).toHaveLength(1);
    // One stream per call: exactly as long as each call compressed alone (one stream for both would be
    // shorter, the second call compressing against the first).
    const alone = (m: OutgoingMessage[]) => encodeSegment(m, [m.length]).length - 1;
    expect(stored[0]?.plain.length).toBe(1 + alone(first) + alone(second));
  });

  it('with compressRuns off stores plain v2, and still reads runs another writer compressed', async () => {
    const topic = randomId('t');
    await bus.createTopics([{ name: topic, partitions: 1 }]);
    const compressed = batch('anon-1', 50, 'c');
    await bus.publish(topic, compressed, ONE_REQUEST);
    const plainBus = createPostgresBus({
      db,
      logger: recordingLogger(),
      crypto,
      ...TEST_TIMINGS,
      compressRuns: false,
    });
    try {
      const plain = batch('anon-1', 50, 'p');
      await plainBus.publish(topic, plain, ONE_REQUEST);
      expect((await segments(topic)).map((s) => s.plain[0])).toEqual([0x03, 0x02]);

      const seen: ConsumedMessage[] = [];
      await collect(plainBus, randomId('g'), topic, seen);
      await waitFor(() => seen.length === 100, 'all 100 messages');
      expect(seen.map((m) => m.value)).toEqual([...compressed, ...plain].map((m) => m.value));
    } finally {
      await plainBus.close();
    }
  });

  it('compresses nothing of a call that does not say it is one request (processor, retries, replays)', async () => {
    const topic = randomId('t');
    await bus.createTopics([{ name: topic, partitions: 1 }]);
    const gathered = batch('anon-1', 100, 'g');
    await bus.publish(topic, gathered);
    const [segment] = await segments(topic);
    expect(segment?.plain[0]).toBe(0x02);
    expect(segment?.plain.length).toBe(encodeSegment(gathered).length);
  });
});
