import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database, migrate } from '@signal/store';
import { POSTGRES_URL, postgresAvailable } from '@signal/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  busMigrations,
  type ConsumedMessage,
  createPostgresBus,
  type OutgoingMessage,
  partitionFor,
  segmentContext,
} from '../src/index';
import { randomId, recordingLogger, testCrypto, waitFor } from './helpers';
import { TEST_TIMINGS } from './timings';

const available = await postgresAvailable();
const migrationsUpTo = (id: string) =>
  busMigrations.slice(0, busMigrations.findIndex((m) => m.id === id) + 1);

/** The segment writer as released before bus/0004: JSON lines of `[key, value]` or `[key, value, headers]`. */
function jsonLines(messages: readonly OutgoingMessage[]): string {
  return messages
    .map((m) =>
      m.headers === undefined
        ? JSON.stringify([m.key, m.value])
        : JSON.stringify([m.key, m.value, m.headers]),
    )
    .join('\n');
}

interface Target {
  open(): Promise<Database>;
  cleanup(): Promise<void>;
}

function pgliteTarget(): Target {
  let root: string | undefined;
  return {
    async open() {
      root = await mkdtemp(join(tmpdir(), 'signal-bus-upgrade-'));
      return createDatabase({ kind: 'pglite', dataDir: join(root, 'data') });
    },
    async cleanup() {
      if (root !== undefined) await rm(root, { recursive: true, force: true });
    },
  };
}

function serverTarget(): Target {
  const schema = `signal_bus_up_${randomBytes(6).toString('hex')}`;
  return {
    open: () => createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 2, schema }),
    async cleanup() {
      const admin = await createDatabase({ kind: 'postgres', url: POSTGRES_URL, maxConnections: 1 });
      try {
        await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.close();
      }
    },
  };
}

describe.each([
  { name: 'PGlite on disk', target: pgliteTarget, skip: false },
  { name: 'PostgreSQL server', target: serverTarget, skip: !available },
])('upgrade to binary segments (bus/0004) on $name', ({ target: makeTarget, skip }) => {
  let target: Target | undefined;
  let db: Database | undefined;
  afterEach(async () => {
    await db?.close();
    await target?.cleanup();
  });

  it.skipIf(skip)(
    'consumes every segment written before the upgrade — plaintext, sealed text — and after, completely and in order',
    async () => {
      target = makeTarget();
      const database = await target.open();
      db = database;
      const crypto = testCrypto();
      const topic = 'upgrade';
      const keys = [0, 1].map(
        (p) =>
          Array.from({ length: 100 }, (_, i) => `visitor-${i}`).find((k) => partitionFor(k, 2) === p) ?? '',
      );
      const message = (partition: number, n: number, headers?: Record<string, string>): OutgoingMessage => ({
        key: keys[partition] as string,
        value: JSON.stringify({ partition, n, text: 'quotes " and \\ and\nnewlines, ☃ 𝄞' }),
        ...(headers === undefined ? {} : { headers }),
      });
      const expected: ConsumedMessage[][] = [[], []];
      const stored = (partition: number, messages: readonly OutgoingMessage[]): void => {
        for (const m of messages) {
          expected[partition]?.push({
            topic,
            partition,
            offset: String(expected[partition]?.length),
            key: m.key,
            value: m.value,
            headers: m.headers ?? {},
            timestamp: 0,
          });
        }
      };

      // bus/0001: plaintext JSON-lines segments, as the first release wrote them.
      await migrate(database, migrationsUpTo('bus/0001_topics_segments_leases'));
      await database.query('INSERT INTO bus_topics (name, partitions) VALUES ($1, 2)', [topic]);
      await database.query('INSERT INTO bus_partitions (topic, partition) VALUES ($1, 0), ($1, 1)', [topic]);
      const plain = [[message(0, 0), message(0, 1, { trace: 't-0' })], [message(1, 0)]];
      for (const [partition, messages] of plain.entries()) {
        await database.query(
          `INSERT INTO bus_segments (topic, partition, base_offset, record_count, records) VALUES ($1, $2, 0, $3, $4)`,
          [topic, partition, messages.length, jsonLines(messages)],
        );
        await database.query(
          'UPDATE bus_partitions SET next_offset = $3 WHERE topic = $1 AND partition = $2',
          [topic, partition, messages.length],
        );
        stored(partition, messages);
      }

      // bus/0002 and bus/0003: sealed text segments, written through the released `bus_append_segments(text[])`
      // (the PGlite path) and the released locking path's INSERT.
      await migrate(database, migrationsUpTo('bus/0003_append_segments_function'));
      const sealedText = (partition: number, base: number, messages: readonly OutgoingMessage[]) =>
        crypto.sealText(jsonLines(messages), segmentContext({ topic, partition, baseOffset: base }));
      const viaFunction = [message(0, 2), message(0, 3), message(0, 4, { a: '1', b: '2' })];
      await database.query(
        `SELECT bus_append_segments($1::text[], $2::integer[], $3::bigint[], $4::bigint[],
           $5::text[], $6::integer[], $7::bigint[], $8::integer[], $9::text[], $10::text)`,
        [
          [topic],
          [0],
          ['2'],
          ['5'],
          [topic],
          [0],
          ['2'],
          [viaFunction.length],
          [sealedText(0, 2, viaFunction)],
          crypto.keyring.currentKeyId,
        ],
      );
      stored(0, viaFunction);
      const viaInsert = [message(1, 1), message(1, 2)];
      await database.query(
        `INSERT INTO bus_segments (topic, partition, base_offset, record_count, records, key_id) VALUES ($1, 1, 1, 2, $2, $3)`,
        [topic, sealedText(1, 1, viaInsert), crypto.keyring.currentKeyId],
      );
      await database.query('UPDATE bus_partitions SET next_offset = 3 WHERE topic = $1 AND partition = 1', [
        topic,
      ]);
      stored(1, viaInsert);

      // The upgrade, then the new writer appends binary segments behind the old ones.
      await migrate(database, busMigrations);
      const bus = createPostgresBus({ db: database, logger: recordingLogger(), crypto, ...TEST_TIMINGS });
      try {
        for (let round = 0; round < 3; round += 1) {
          const after = [message(0, 5 + round), message(1, 3 + round, { round: String(round) })];
          await bus.publish(topic, after);
          for (const m of after) stored(partitionFor(m.key, 2), [m]);
        }
        const forms = await database.query<{ partition: number; text: number; binary: number }>(
          `SELECT partition, count(records)::int AS text, count(payload)::int AS binary
           FROM bus_segments WHERE topic = $1 GROUP BY partition ORDER BY partition`,
          [topic],
        );
        expect(forms.rows).toEqual([
          { partition: 0, text: 2, binary: 3 },
          { partition: 1, text: 2, binary: 3 },
        ]);

        const seen: ConsumedMessage[] = [];
        const subscription = await bus.subscribe({
          groupId: randomId('after-upgrade'),
          topics: [topic],
          batchSize: 2,
          handler: async (batch) => {
            seen.push(...batch.messages);
          },
        });
        const total = (expected[0]?.length ?? 0) + (expected[1]?.length ?? 0);
        await waitFor(() => seen.length >= total, `all ${total} messages`);
        await subscription.stop();
        for (const partition of [0, 1]) {
          expect(
            seen.filter((m) => m.partition === partition).map((m) => ({ ...m, timestamp: 0 })),
            `partition ${partition}`,
          ).toEqual(expected[partition]);
        }
        expect(seen).toHaveLength(total);
      } finally {
        await bus.close();
      }
    },
  );
});
