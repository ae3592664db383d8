import { randomBytes } from 'node:crypto';
import { fsyncSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, busMigrations, type ConsumedMessage, createPostgresBus } from '../src/index';
import { collect, randomId, recordingLogger, testCrypto } from './helpers';
import { TEST_TIMINGS } from './timings';

/**
 * bus/0005: a segment up to a page is stored inline in its row; only larger ones go to TOAST. A group commit
 * of single events writes ~3 KB segments, and cutting each into ~2 KB TOAST chunks doubled their insert cost.
 */
describe('postgres bus: segment storage (PGlite)', () => {
  let root: string;
  let db: Database;
  let bus: Bus;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'signal-bus-storage-'));
    db = await createDatabase({ kind: 'pglite', dataDir: join(root, 'pglite') });
    await migrate(db, busMigrations);
    bus = createPostgresBus({ db, logger: recordingLogger(), crypto: testCrypto(), ...TEST_TIMINGS });
  });
  afterAll(async () => {
    await bus.close();
    await db.close();
    await rm(root, { recursive: true, force: true });
  });

  const toastChunks = async (): Promise<number> => {
    const { rows } = await db.query<{ toast: string }>(
      `SELECT reltoastrelid::regclass::text AS toast FROM pg_class WHERE oid = 'bus_segments'::regclass`,
    );
    const { rows: count } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${rows[0]?.toast}`);
    return count[0]?.n ?? -1;
  };
  // Random hex does not compress, and one message per call is never compressed anyway.
  const message = (chars: number) => ({
    key: 'k',
    value: JSON.stringify({
      blob: randomBytes(chars / 2).toString('hex'),
    }),
  });

  it('keeps a 7 KB segment inline and moves only a larger one to TOAST, reading both back', async () => {
    const topic = randomId('t');
    await bus.createTopics([{ name: topic, partitions: 1 }]);
    const small = message(7000);
    await bus.publish(topic, [small]);
    expect(await toastChunks()).toBe(0);

    const large = message(30_000);
    await bus.publish(topic, [large]);
    expect(await toastChunks()).toBeGreaterThan(0);

    const seen: ConsumedMessage[] = [];
    await collect(bus, randomId('g'), topic, seen);
    await expect
      .poll(() => seen.map((m) => m.value), { timeout: 15_000 })
      .toEqual([small.value, large.value]);
  });

  it('rejects publishes (never hangs, never acknowledges) once the disk refuses to sync', async () => {
    const dataDir = join(root, 'failing');
    let failing = false;
    const failingDb = await createDatabase({
      kind: 'pglite',
      dataDir,
      fileSync: (fd) => {
        if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        fsyncSync(fd);
      },
    });
    await migrate(failingDb, busMigrations);
    const failingBus = createPostgresBus({
      db: failingDb,
      logger: recordingLogger(),
      crypto: testCrypto(),
      ...TEST_TIMINGS,
    });
    try {
      const topic = randomId('t');
      await failingBus.createTopics([{ name: topic, partitions: 1 }]);
      await failingBus.publish(topic, [{ key: 'k', value: 'before' }]);
      failing = true;
      for (const value of ['during', 'after']) {
        const err = await failingBus.publish(topic, [{ key: 'k', value }]).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'bus_publish_failed' });
      }
    } finally {
      await failingBus.close().catch(() => undefined);
      await failingDb.close().catch(() => undefined);
    }
  });
});
