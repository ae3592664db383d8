import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Bus,
  type BusCrypto,
  busMigrations,
  type ConsumedMessage,
  createPostgresBus,
  partitionFor,
  type Subscription,
  segmentContext,
} from '../src/index';
import { type LogEntry, randomId, recordingLogger, sleep, testCrypto, waitFor } from './helpers';
import { TEST_TIMINGS } from './timings';

const EMAIL = 'jane.doe+bus-sealing@example.com';
const event = (i: number): string =>
  JSON.stringify({ type: 'identify', messageId: `m-${i}`, traits: { email: EMAIL, n: i } });

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('postgres bus sealing (PGlite on disk)', () => {
  let root: string;
  let db: Database;
  let opened: Bus[] = [];
  let logger = recordingLogger();
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);

  const open = (crypto: BusCrypto, onUnreadable?: (reason: string) => void): Bus => {
    const bus = createPostgresBus({
      db,
      logger,
      crypto,
      ...TEST_TIMINGS,
      ...(onUnreadable === undefined ? {} : { onUnreadable: (e) => onUnreadable(e.reason) }),
    });
    opened.push(bus);
    return bus;
  };
  const consume = (bus: Bus, topic: string, into: ConsumedMessage[]): Promise<Subscription> =>
    bus.subscribe({
      groupId: randomId('g'),
      topics: [topic],
      handler: async (batch) => {
        into.push(...batch.messages);
      },
    });
  const committed = async (topic: string): Promise<number> => {
    const { rows } = await db.query<{ n: string }>(
      'SELECT COALESCE(max(committed_offset), 0)::text AS n FROM bus_group_partitions WHERE topic = $1',
      [topic],
    );
    return Number(rows[0]?.n);
  };
  const noPlaintextLogged = (entries: readonly LogEntry[]): void => {
    expect(JSON.stringify(entries)).not.toContain(EMAIL);
    expect(JSON.stringify(entries)).not.toContain('"traits"');
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'signal-bus-sealing-'));
    db = await createDatabase({ kind: 'pglite', dataDir: join(root, 'pglite') });
    await migrate(db, busMigrations);
  });
  afterEach(async () => {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
    logger = recordingLogger();
  });
  afterAll(async () => {
    await db.close();
    await rm(root, { recursive: true, force: true });
  });

  it('stores no PII in the bus tables or the data directory, and consumers get the event back', async () => {
    const bus = open(testCrypto(keyA));
    await bus.createTopics([{ name: 'raw', partitions: 2 }]);
    await bus.publish(
      'raw',
      Array.from({ length: 20 }, (_, i) => ({ key: `v${i}`, value: event(i), headers: { h: EMAIL } })),
    );

    // Every column of every bus table, as text.
    for (const table of ['bus_topics', 'bus_partitions', 'bus_segments', 'bus_group_partitions']) {
      const { rows } = await db.query(`SELECT t::text AS row FROM ${table} t`);
      expect(JSON.stringify(rows)).not.toContain(EMAIL);
      expect(JSON.stringify(rows)).not.toContain('jane.doe');
    }
    const { rows } = await db.query<{
      payload: Buffer | null;
      records: string | null;
      key_id: string | null;
    }>('SELECT payload, records, key_id FROM bus_segments WHERE topic = $1', ['raw']);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      // The binary v1 ciphertext (version byte 1, then the key id) in `payload`; no text form.
      expect(row.records).toBeNull();
      expect(row.payload?.[0]).toBe(1);
      expect(row.payload?.includes(Buffer.from(EMAIL))).toBe(false);
      expect(row.payload?.includes(Buffer.from('jane.doe'))).toBe(false);
      expect(row.key_id).toBe(testCrypto(keyA).keyring.currentKeyId);
    }

    const seen: ConsumedMessage[] = [];
    await consume(bus, 'raw', seen);
    await waitFor(() => seen.length === 20, 'all 20 events');
    expect(seen.map((m) => JSON.parse(m.value).traits.email)).toEqual(Array(20).fill(EMAIL));
    expect(seen.every((m) => m.headers.h === EMAIL)).toBe(true);

    // What PGlite wrote to disk (heap files, WAL): checkpoint so the pages are in the files too.
    await db.exec('CHECKPOINT');
    for (const file of await filesUnder(join(root, 'pglite'))) {
      const bytes = await readFile(file);
      expect(bytes.includes(Buffer.from(EMAIL)), file).toBe(false);
      expect(bytes.includes(Buffer.from('jane.doe')), file).toBe(false);
    }
  });

  it('halts a partition at a tampered segment: nothing skipped or committed, other partitions flow, no plaintext logged', async () => {
    const reasons: string[] = [];
    const bus = open(testCrypto(keyA), (reason) => reasons.push(reason));
    await bus.createTopics([{ name: 'tamper', partitions: 2 }]);
    // Keys 'a' and 'b' land in different partitions of 2 (murmur2).
    const receipts = await bus.publish('tamper', [
      { key: 'k1', value: event(1) },
      { key: 'k3', value: event(3) },
    ]);
    expect(new Set(receipts.map((r) => r.partition)).size).toBe(2);
    const [victim, healthy] = receipts;
    if (victim === undefined || healthy === undefined) throw new Error('two partitions expected');
    // Flip one bit in the middle of the victim's ciphertext.
    await db.query(
      `UPDATE bus_segments SET payload = set_byte(payload, 60, get_byte(payload, 60) # 1)
       WHERE topic = 'tamper' AND partition = $1`,
      [victim.partition],
    );

    const seen: ConsumedMessage[] = [];
    await consume(bus, 'tamper', seen);
    await waitFor(() => seen.length === 1 && reasons.length >= 2, 'the healthy partition and two retries');
    expect(seen[0]?.partition).toBe(healthy.partition);
    expect(reasons.every((r) => r === 'authentication_failed' || r === 'commitment_mismatch')).toBe(true);
    const { rows } = await db.query<{ partition: number; committed_offset: string | null }>(
      `SELECT partition, committed_offset::text AS committed_offset FROM bus_group_partitions
       WHERE topic = 'tamper' AND partition = $1`,
      [victim.partition],
    );
    expect(rows.every((r) => r.committed_offset === null || r.committed_offset === '0')).toBe(true);
    const errors = logger.entries.filter((e) => e.level === 'error');
    expect(errors.some((e) => e.msg.includes('partition is halted'))).toBe(true);
    noPlaintextLogged(logger.entries);
  });

  it('refuses a segment moved to another topic (the context binds topic, partition and offset)', async () => {
    const reasons: string[] = [];
    const bus = open(testCrypto(keyA), (reason) => reasons.push(reason));
    await bus.createTopics([
      { name: 'from', partitions: 1 },
      { name: 'to', partitions: 1 },
    ]);
    await bus.publish('from', [{ key: 'k', value: event(1) }]);
    await db.query(
      `INSERT INTO bus_segments (topic, partition, base_offset, record_count, payload, key_id)
       SELECT 'to', partition, base_offset, record_count, payload, key_id FROM bus_segments WHERE topic = 'from'`,
    );
    await db.query(`UPDATE bus_partitions SET next_offset = 1 WHERE topic = 'to'`);

    const seen: ConsumedMessage[] = [];
    await consume(bus, 'to', seen);
    await waitFor(() => reasons.length >= 2, 'the moved segment to be refused twice');
    expect(seen).toEqual([]);
    expect(reasons[0]).toBe('commitment_mismatch');
    expect(await committed('to')).toBe(0);
    noPlaintextLogged(logger.entries);
  });

  it('opens segments sealed under key A in dual-key mode (B + previous A); without A it halts and loses nothing', async () => {
    const before = open(testCrypto(keyA));
    await before.createTopics([{ name: 'rotate', partitions: 1 }]);
    await before.publish('rotate', [{ key: 'k', value: event(1) }]);

    // A process that only holds B: halted, nothing consumed or committed.
    const reasons: string[] = [];
    const onlyB = open(testCrypto(keyB), (reason) => reasons.push(reason));
    const none: ConsumedMessage[] = [];
    const stuck = await onlyB.subscribe({
      groupId: 'rotation-group',
      topics: ['rotate'],
      handler: async (batch) => {
        none.push(...batch.messages);
      },
    });
    await waitFor(() => reasons.length >= 1, 'the unknown key to be reported');
    expect(reasons[0]).toBe('unknown_key_id');
    expect(none).toEqual([]);
    await stuck.stop();

    // The same group with B + previous A: gets the old message, and new ones are sealed under B.
    const dual = open(testCrypto(keyB, keyA));
    await dual.publish('rotate', [{ key: 'k', value: event(2) }]);
    const seen: ConsumedMessage[] = [];
    await dual.subscribe({
      groupId: 'rotation-group',
      topics: ['rotate'],
      handler: async (batch) => {
        seen.push(...batch.messages);
      },
    });
    await waitFor(() => seen.length === 2, 'both messages');
    expect(seen.map((m) => JSON.parse(m.value).messageId)).toEqual(['m-1', 'm-2']);
    const { rows } = await db.query<{ key_id: string }>(
      `SELECT key_id FROM bus_segments WHERE topic = 'rotate' ORDER BY base_offset`,
    );
    expect(rows.map((r) => r.key_id)).toEqual([
      testCrypto(keyA).keyring.currentKeyId,
      testCrypto(keyB).keyring.currentKeyId,
    ]);
  });

  it('reads plaintext segments written before sealing existed, and refuses plaintext slipped in after', async () => {
    const reasons: string[] = [];
    const bus = open(testCrypto(keyA), (reason) => reasons.push(reason));
    await bus.createTopics([
      { name: 'legacy', partitions: 1 },
      { name: 'forged', partitions: 1 },
    ]);
    const plain = JSON.stringify(['k', event(1)]);
    // As bus/0002 leaves an upgraded deployment: a plaintext segment below `sealed_from`.
    await db.query(
      `INSERT INTO bus_segments (topic, partition, base_offset, record_count, records) VALUES ('legacy', 0, 0, 1, $1)`,
      [plain],
    );
    await db.query(`UPDATE bus_partitions SET next_offset = 1, sealed_from = 1 WHERE topic = 'legacy'`);
    // The same row in a partition whose `sealed_from` is 0: forged.
    await db.query(
      `INSERT INTO bus_segments (topic, partition, base_offset, record_count, records) VALUES ('forged', 0, 0, 1, $1)`,
      [plain],
    );
    await db.query(`UPDATE bus_partitions SET next_offset = 1 WHERE topic = 'forged'`);

    const legacy: ConsumedMessage[] = [];
    await consume(bus, 'legacy', legacy);
    await waitFor(() => legacy.length === 1, 'the legacy message');
    expect(JSON.parse(legacy[0]?.value ?? '{}').messageId).toBe('m-1');

    const forged: ConsumedMessage[] = [];
    await consume(bus, 'forged', forged);
    await waitFor(() => reasons.length >= 1, 'the forged segment to be refused');
    await sleep(50);
    expect(reasons[0]).toBe('unsealed');
    expect(forged).toEqual([]);
  });

  it('halts a partition at a segment that opens but does not decode, in either stored form; the others flow', async () => {
    const reasons: string[] = [];
    const crypto = testCrypto(keyA);
    const bus = open(crypto, (reason) => reasons.push(reason));
    await bus.createTopics([{ name: 'garbled', partitions: 3 }]);
    const at = (partition: number) => segmentContext({ topic: 'garbled', partition, baseOffset: 0 });
    // Partition 0: a binary segment whose record runs past its end. Partition 1: a text one that is not JSON.
    await db.query(
      `INSERT INTO bus_segments (topic, partition, base_offset, record_count, payload, key_id)
       VALUES ('garbled', 0, 0, 1, $1, $2)`,
      [crypto.seal(Buffer.from([2, 0, 5, 0x61]), at(0)), crypto.keyring.currentKeyId],
    );
    await db.query(
      `INSERT INTO bus_segments (topic, partition, base_offset, record_count, records, key_id)
       VALUES ('garbled', 1, 0, 1, $1, $2)`,
      [crypto.sealText('["a",', at(1)), crypto.keyring.currentKeyId],
    );
    await db.query(`UPDATE bus_partitions SET next_offset = 1 WHERE topic = 'garbled' AND partition < 2`);
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionFor(k, 3) === 2) ?? '';
    await bus.publish('garbled', [{ key, value: event(7) }]);

    const seen: ConsumedMessage[] = [];
    await consume(bus, 'garbled', seen);
    await waitFor(
      () => seen.length === 1 && reasons.length >= 4,
      'the healthy partition and two retries of each',
    );
    expect(seen.map((m) => m.partition)).toEqual([2]);
    expect(new Set(reasons)).toEqual(new Set(['corrupt']));
    const { rows } = await db.query<{ committed: string | null }>(
      `SELECT committed_offset::text AS committed FROM bus_group_partitions WHERE topic = 'garbled' AND partition < 2`,
    );
    expect(rows.every((r) => r.committed === null || r.committed === '0')).toBe(true);
    const halted = logger.entries.filter((e) => e.msg.includes('partition is halted'));
    expect(new Set(halted.map((e) => (e.obj as { partition: number }).partition))).toEqual(new Set([0, 1]));
    noPlaintextLogged(logger.entries);
  });

  it('keeps exactly one stored form per segment, and never an unnamed key beside a binary payload', async () => {
    const bus = open(testCrypto(keyA));
    await bus.createTopics([{ name: 'forms', partitions: 1 }]);
    const insert = (payload: Buffer | null, records: string | null, keyId: string | null) =>
      db.query(
        `INSERT INTO bus_segments (topic, partition, base_offset, record_count, payload, records, key_id)
         VALUES ('forms', 0, 0, 1, $1, $2, $3)`,
        [payload, records, keyId],
      );
    for (const [payload, records, keyId] of [
      [Buffer.from([1]), 'v1.AQ', 'k'],
      [null, null, 'k'],
      [Buffer.from([1]), null, null],
    ] as const) {
      await expect(insert(payload, records, keyId)).rejects.toMatchObject({ sqlState: '23514' });
    }
    expect((await db.query(`SELECT 1 FROM bus_segments WHERE topic = 'forms'`)).rows).toEqual([]);
  });
});
