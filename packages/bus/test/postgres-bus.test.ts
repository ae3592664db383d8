import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Bus,
  BusError,
  busMigrations,
  type ConsumedMessage,
  createPostgresBus,
  type PostgresBus,
  type PostgresBusSettings,
} from '../src/index';
import { collect, recordingLogger, severable, testCrypto, waitFor } from './helpers';
import { TEST_TIMINGS } from './timings';

async function busError(promise: Promise<unknown>): Promise<BusError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof BusError) return err;
    throw err;
  }
  throw new Error('expected a BusError');
}

const values = (messages: readonly ConsumedMessage[]): string[] => messages.map((m) => m.value);
const range = (from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => String(from + i));

describe('postgres bus on PGlite', () => {
  // One in-memory database for the file (starting PGlite takes seconds); every test uses its own topics.
  let db: Database;
  let bus: PostgresBus;
  let opened: Bus[] = [];
  const logger = recordingLogger();
  const key = randomBytes(32);
  const crypto = testCrypto(key);
  const open = (settings: Partial<PostgresBusSettings & { db: Database }> = {}): PostgresBus => {
    const b = createPostgresBus({ db, logger, crypto, ...TEST_TIMINGS, ...settings });
    opened.push(b);
    return b;
  };

  beforeAll(async () => {
    db = await createDatabase({ kind: 'pglite' });
    await migrate(db, busMigrations);
  });
  afterAll(async () => {
    await db.close();
  });
  beforeEach(() => {
    bus = open();
  });
  afterEach(async () => {
    await Promise.all(opened.map((b) => b.close()));
    opened = [];
  });

  async function segmentCount(topic: string): Promise<number> {
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM bus_segments WHERE topic = $1',
      [topic],
    );
    return Number(rows[0]?.n);
  }

  it('group-commits concurrent publishes into a few segment rows with contiguous offsets', async () => {
    await bus.createTopics([{ name: 'gc', partitions: 1 }]);
    const receipts = (
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => bus.publish('gc', [{ key: 'k', value: String(i) }])),
      )
    ).flat();
    const offsets = receipts.map((r) => Number(r.baseOffset)).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // The first publish starts a transaction alone; the other 199 queue behind it and share the next ones.
    expect(await segmentCount('gc')).toBeLessThan(20);
  });

  it('keeps offsets contiguous when two bus objects write one PGlite partition in turn (stale head recovery)', async () => {
    const a = open();
    const b = open();
    await a.createTopics([{ name: 'turns', partitions: 1 }]);
    const offsets: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      // Each writer last committed before the other one wrote: its remembered head is stale every time.
      for (const [name, bus] of [
        ['a', a],
        ['b', b],
      ] as const) {
        const [receipt] = await bus.publish('turns', [{ key: 'k', value: `${name}${i}` }]);
        offsets.push(receipt?.baseOffset ?? '?');
      }
    }
    expect(offsets).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(logger.entries.some((e) => e.msg.startsWith('optimistic bus write refused'))).toBe(true);
    // Every segment was sealed for the offset it landed at, so all of them open, in order.
    const seen: ConsumedMessage[] = [];
    await collect(a, 'g-turns', 'turns', seen);
    await waitFor(() => seen.length === 6, 'six messages');
    expect(values(seen)).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('splits large publishes into bounded segments and reads across them in order', async () => {
    const small = open({ maxSegmentRecords: 10 });
    await small.createTopics([{ name: 'seg', partitions: 1 }]);
    await small.publish(
      'seg',
      range(0, 95).map((v) => ({ key: 'k', value: v, headers: { n: v } })),
    );
    expect(await segmentCount('seg')).toBe(10);
    const seen: ConsumedMessage[] = [];
    await collect(small, 'g', 'seg', seen, 25);
    await waitFor(() => seen.length >= 95, 'all 95');
    expect(values(seen)).toEqual(range(0, 95));
    expect(seen.every((m) => m.headers.n === m.value && m.offset === m.value)).toBe(true);
  });

  it('reads many small segments in offset order (numeric, not text: 9 before 10)', async () => {
    const unbatched = open({ maxFlushMessages: 1 });
    await unbatched.createTopics([{ name: 'tiny', partitions: 1 }]);
    for (let i = 0; i < 120; i += 1) await unbatched.publish('tiny', [{ key: 'k', value: String(i) }]);
    expect(await segmentCount('tiny')).toBe(120);
    const seen: ConsumedMessage[] = [];
    await collect(unbatched, 'g', 'tiny', seen, 50);
    await waitFor(() => seen.length >= 120, 'all 120');
    expect(values(seen)).toEqual(range(0, 120));
  });

  it('retention deletes only segments every group has consumed, and a new group starts at the earliest kept', async () => {
    const small = open({ maxSegmentRecords: 10 });
    await small.createTopics([
      { name: 'ret', partitions: 1 },
      { name: 'unread', partitions: 1 },
    ]);
    await small.publish(
      'ret',
      range(0, 30).map((v) => ({ key: 'k', value: v })),
    );
    await small.publish('unread', [{ key: 'k', value: 'x' }]);
    const fast: ConsumedMessage[] = [];
    const a = await collect(small, 'fast', 'ret', fast);
    await waitFor(() => fast.length >= 30, 'fast group');
    const slow: ConsumedMessage[] = [];
    const b = await small.subscribe({
      groupId: 'slow',
      topics: ['ret'],
      batchSize: 10,
      handler: async (batch) => {
        slow.push(...batch.messages);
        if (slow.length >= 10) b.pause();
      },
    });
    await waitFor(() => slow.length >= 10, 'slow group');
    await a.stop();
    await b.stop();

    expect(await segmentCount('ret')).toBe(3);
    await small.compact({ retentionMs: 3_600_000 });
    expect(await segmentCount('ret')).toBe(3);
    const result = await small.compact({ retentionMs: 0 });
    expect(result.segments).toBeGreaterThanOrEqual(1);
    expect(result.records).toBeGreaterThanOrEqual(10);
    expect(await segmentCount('ret')).toBe(2);
    expect(await segmentCount('unread')).toBe(1);

    const late: ConsumedMessage[] = [];
    await collect(small, 'late', 'ret', late);
    await waitFor(() => late.length >= 20, 'late group');
    expect(values(late)).toEqual(range(10, 30));
  });

  it('creates topics on first use, or refuses unknown ones when asked to', async () => {
    const receipts = await bus.publish('auto', [{ key: 'a', value: '1' }]);
    expect(receipts).toHaveLength(1);
    const strict = open({ autoCreateTopics: false });
    expect((await busError(strict.publish('nope', [{ key: 'a', value: '1' }]))).code).toBe(
      'bus_unknown_topic',
    );
    await strict.createTopics([{ name: 'nope', partitions: 3 }]);
    await strict.createTopics([{ name: 'nope', partitions: 5 }]);
    expect(
      logger.entries.some((e) => e.msg === 'topic exists with a different partition count; keeping it'),
    ).toBe(true);
    const [receipt] = await strict.publish('nope', [{ key: 'a', value: '1' }]);
    expect(receipt?.partition).toBeLessThan(3);
  });

  it('refuses invalid options, names and a closed bus with stable codes', async () => {
    expect(() =>
      createPostgresBus({ db, logger, crypto, sessionTimeoutMs: 1000, heartbeatIntervalMs: 800 }),
    ).toThrow(/heartbeatIntervalMs must be at most half of sessionTimeoutMs/);
    expect((await busError(bus.publish('bad/name', [{ key: 'a', value: '1' }]))).code).toBe(
      'bus_invalid_argument',
    );
    expect((await busError(bus.createTopics([{ name: 'zero', partitions: 0 }]))).code).toBe(
      'bus_invalid_argument',
    );
    expect(
      (await busError(bus.subscribe({ groupId: 'g', topics: ['t'], batchSize: 0, handler: async () => {} })))
        .code,
    ).toBe('bus_invalid_argument');
    await bus.close();
    const closed = await busError(bus.publish('t', [{ key: 'a', value: '1' }]));
    expect([closed.code, closed.retryable]).toEqual(['bus_closed', false]);
  });

  it('a publish still looking up its topic when the bus closes is refused as closed and writes nothing', async () => {
    const racing = open();
    const publishing = busError(racing.publish('late', [{ key: 'a', value: '1' }]));
    await racing.close();
    expect((await publishing).code).toBe('bus_closed');
    expect(await segmentCount('late')).toBe(0);
  });

  it('rejects a publish it could not write, as retryable, and writes none of it', async () => {
    const { db: cut, fault } = severable(db);
    const flaky = open({ db: cut });
    await flaky.createTopics([{ name: 'f', partitions: 2 }]);
    fault.sever();
    const err = await busError(flaky.publish('f', [{ key: 'a', value: '1' }]));
    expect([err.code, err.retryable]).toEqual(['bus_publish_failed', true]);
    expect(await segmentCount('f')).toBe(0);
  });
});

describe('postgres bus durability on PGlite', () => {
  const key = randomBytes(32);
  const crypto = testCrypto(key);
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'signal-bus-crash-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps every acknowledged message when the process is killed right after publish resolves', async () => {
    const dataDir = join(root, 'data');
    const child = fileURLToPath(new URL('./fixtures/publish-then-crash.ts', import.meta.url));
    const run = execFile(process.execPath, ['--import', 'tsx', child, dataDir, '500', 'crash'], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      env: { ...process.env, BUS_TEST_KEY: key.toString('hex') },
    });
    const stdout: string[] = [];
    run.stdout?.on('data', (chunk: string) => stdout.push(chunk));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
      run.on('exit', (_code, sig) => resolve(sig)),
    );
    expect(signal).toBe('SIGKILL');
    const receipts = JSON.parse(stdout.join('')) as { count: number }[];
    expect(receipts.reduce((n, r) => n + r.count, 0)).toBe(500);

    const db = await createDatabase({ kind: 'pglite', dataDir });
    const bus = createPostgresBus({ db, logger: recordingLogger(), crypto, ...TEST_TIMINGS });
    const seen: ConsumedMessage[] = [];
    await collect(bus, 'after-crash', 'crash', seen, 100);
    await waitFor(() => seen.length >= 500, 'all 500 after the crash');
    expect(new Set(values(seen)).size).toBe(500);
    await bus.close();
    await db.close();
  });
});
