import type { Database } from '@signal/store';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  type Bus,
  createPostgresBus,
  type PostgresBusSettings,
  partitionFor,
  type UnreadableListener,
} from '../src/index';
import {
  deferred,
  intercepted,
  randomId,
  recordingLogger,
  sleep,
  testCrypto,
  waitFor,
  waitForAsync,
} from './helpers';

/**
 * The postgres consumer's hand-overs, on each deployment of the postgres bus: a member stopping with a batch
 * in flight, a partition released while a message arrives on it, a segment that does not open. A harness
 * stands for a deployment; `connect()` gives one more member its database.
 */
export interface ConsumerSafetyHarness {
  /** Its own pool on a PostgreSQL server; the one shared database in embedded mode. */
  connect(): Promise<Database>;
  close(): Promise<void>;
}

/**
 * Short leases so the suite runs in seconds, long enough that a member starved of CPU for a second keeps its
 * partitions. The tests wait for what the database and the members did, not for the clock.
 */
const TIMINGS = {
  sessionTimeoutMs: 2000,
  heartbeatIntervalMs: 50,
  pollIntervalMs: 20,
  retryBackoffMs: 20,
  maxRetryBackoffMs: 100,
  defaultStopDeadlineMs: 2000,
} as const;

/** The first key `k<n>` that lands in `partition`. */
function keyFor(partition: number, partitions: number): string {
  for (let i = 0; ; i += 1) if (partitionFor(`k${i}`, partitions) === partition) return `k${i}`;
}

/**
 * Who handled what, as `A p0@3`, and every time a member was handed a partition while another member's
 * handler was still running on it.
 */
function handlingLog() {
  const handled: string[] = [];
  const overlaps: string[] = [];
  const active = new Map<number, string>();
  const handler =
    (who: string, during?: (batch: Batch) => Promise<void>) =>
    async (batch: Batch): Promise<void> => {
      const other = active.get(batch.partition);
      if (other !== undefined) overlaps.push(`${who} got partition ${batch.partition} while ${other} had it`);
      active.set(batch.partition, who);
      handled.push(...batch.messages.map((m) => `${who} p${m.partition}@${m.offset}`));
      try {
        await during?.(batch);
      } finally {
        if (active.get(batch.partition) === who) active.delete(batch.partition);
      }
    };
  return { handled, overlaps, handler };
}

export function describeConsumerSafety(
  name: string,
  harnessFactory: () => Promise<ConsumerSafetyHarness>,
  options: { readonly skip?: boolean } = {},
): void {
  describe.skipIf(options.skip === true)(`postgres consumer safety: ${name}`, () => {
    let harness: ConsumerSafetyHarness;
    /** The test's own view of the bus tables. */
    let observer: Database;
    const crypto = testCrypto();
    let buses: Bus[] = [];

    beforeAll(async () => {
      harness = await harnessFactory();
      observer = await harness.connect();
    });
    afterEach(async () => {
      await Promise.all(buses.map((b) => b.close()));
      buses = [];
    });
    afterAll(async () => {
      await harness?.close();
    });

    const member = (
      db: Database,
      settings: PostgresBusSettings & { onUnreadable?: UnreadableListener } = {},
    ) => {
      const logger = recordingLogger();
      const bus = createPostgresBus({ db, logger, crypto, ...TIMINGS, ...settings });
      buses.push(bus);
      return { bus, logger };
    };

    /** The database's clock `ms` from now, as text (leases are measured on it). */
    const dbTimeIn = async (ms: number): Promise<string> => {
      const { rows } = await observer.query<{ at: string }>(
        `SELECT (now() + $1::integer * interval '1 millisecond')::text AS at`,
        [ms],
      );
      return rows[0]?.at ?? '';
    };
    const dbTimePassed = async (at: string): Promise<boolean> => {
      const { rows } = await observer.query<{ passed: boolean }>('SELECT now() > $1::timestamptz AS passed', [
        at,
      ]);
      return rows[0]?.passed === true;
    };

    it('a stopping member keeps its in-flight batch leased until it commits, and hands its idle partitions over at once', async () => {
      const topic = randomId('drain');
      const groupId = randomId('g');
      const busy = keyFor(0, 2);
      const idle = keyFor(1, 2);
      const a = member(await harness.connect());
      // Counts B's heartbeats: each starts by renewing its membership, after the previous one has finished.
      let bHeartbeats = 0;
      const b = member(
        intercepted(await harness.connect(), (sql) => {
          if (sql.includes('INSERT INTO bus_members')) bHeartbeats += 1;
        }),
      );
      await a.bus.createTopics([{ name: topic, partitions: 2 }]);
      const { handled, overlaps, handler } = handlingLog();

      const started = deferred();
      const finish = deferred();
      let finishing = false;
      void finish.promise.then(() => {
        finishing = true;
      });
      const subA = await a.bus.subscribe({
        groupId,
        topics: [topic],
        batchSize: 5,
        handler: handler('A', async (batch) => {
          started.resolve();
          // Alive and saying so all along: only the stop could cost this batch its partition.
          while (!finishing) {
            await batch.heartbeat();
            await sleep(20);
          }
        }),
      });
      await a.bus.publish(
        topic,
        Array.from({ length: 5 }, (_, i) => ({ key: busy, value: String(i) })),
      );
      await started.promise;
      await a.bus.publish(topic, [
        ...Array.from({ length: 5 }, (_, i) => ({ key: busy, value: String(i + 5) })),
        { key: idle, value: 'idle' },
      ]);

      // Every lease A holds when the stop begins lapses by then unless A renews it.
      const leasesLapse = await dbTimeIn(TIMINGS.sessionTimeoutMs);
      const stopping = subA.stop({ deadlineMs: 30_000 });
      await b.bus.subscribe({ groupId, topics: [topic], batchSize: 5, handler: handler('B') });

      await waitFor(() => handled.includes('B p1@0'), 'B to take over the idle partition');
      const idleTakenWhileALeased = !(await dbTimePassed(leasesLapse));
      // B has had its chance at the busy partition: a whole heartbeat of B ran after A's lease would have lapsed.
      await waitForAsync(
        () => dbTimePassed(leasesLapse),
        'the leases A held at the stop to lapse if not renewed',
      );
      const seen = bHeartbeats;
      await waitFor(() => bHeartbeats >= seen + 2, 'one whole heartbeat of B after that');
      finish.resolve();
      await stopping;
      await waitFor(() => handled.includes('B p0@9'), 'B to consume the rest of the busy partition');

      expect(overlaps).toEqual([]);
      // A's batch was committed (B never got it), and B went on from there.
      expect(handled.filter((h) => h.startsWith('A'))).toEqual([
        'A p0@0',
        'A p0@1',
        'A p0@2',
        'A p0@3',
        'A p0@4',
      ]);
      expect(handled.filter((h) => h.startsWith('B')).sort()).toEqual([
        'B p0@5',
        'B p0@6',
        'B p0@7',
        'B p0@8',
        'B p0@9',
        'B p1@0',
      ]);
      expect(idleTakenWhileALeased).toBe(true);
    });

    it('never starts a batch on a partition whose release is on its way to the database', async () => {
      const topic = randomId('release');
      const groupId = randomId('g');
      let busA: Bus | undefined;
      let armed = false;
      let released = -1;
      let headQueries = 0;
      const aStartedOnReleased = deferred();
      const bStartedOnReleased = deferred();
      const dbA = intercepted(await harness.connect(), async (sql, params) => {
        // The run loop's look for new messages (the writer's head query locks rows and reads no `ANY`).
        if (sql.includes('FROM bus_partitions WHERE topic = ANY')) headQueries += 1;
        if (!armed || !sql.includes('SET owner = NULL') || busA === undefined) return;
        armed = false;
        const partitions = params?.[3];
        released = Array.isArray(partitions) ? Number(partitions[0]) : -1;
        // While A's release is on its way (a slow network, a busy pool), a message arrives on that partition.
        await busA.publish(topic, [{ key: keyFor(released, 2), value: 'x' }]);
        // The release lands once A's run loop has started a batch there, or looked for messages twice
        // (the second look starts only after the first one's batches).
        const looked = headQueries;
        await Promise.race([
          aStartedOnReleased.promise,
          waitFor(() => headQueries >= looked + 2, 'A’s run loop to look for messages twice'),
        ]);
      });
      const a = member(dbA);
      busA = a.bus;
      const b = member(await harness.connect());
      await a.bus.createTopics([{ name: topic, partitions: 2 }]);
      const { handled, overlaps, handler } = handlingLog();

      const subA = await a.bus.subscribe({
        groupId,
        topics: [topic],
        handler: handler('A', async (batch) => {
          if (batch.partition !== released) return;
          aStartedOnReleased.resolve();
          await Promise.race([bStartedOnReleased.promise, sleep(5000)]);
        }),
      });
      await waitFor(() => subA.assignments().length === 2, 'A to hold both partitions');
      armed = true;
      await b.bus.subscribe({
        groupId,
        topics: [topic],
        handler: handler('B', async (batch) => {
          if (batch.partition === released) bStartedOnReleased.resolve();
        }),
      });
      await waitFor(() => handled.includes(`B p${released}@0`), 'B to consume the partition handed to it');

      expect(overlaps).toEqual([]);
      expect(handled).toEqual([`B p${released}@0`]);
    });

    it('delivers the readable messages before a segment that does not open, and halts its partition right at it', async () => {
      const topic = randomId('halt');
      const groupId = randomId('g');
      const reasons: string[] = [];
      const { bus, logger } = member(await harness.connect(), {
        onUnreadable: (e) => reasons.push(e.reason),
      });
      await bus.createTopics([{ name: topic, partitions: 1 }]);
      for (let i = 0; i < 3; i += 1) await bus.publish(topic, [{ key: 'k', value: String(i) }]);
      const { rows } = await observer.query<{ base: string }>(
        'SELECT base_offset::text AS base FROM bus_segments WHERE topic = $1 ORDER BY base_offset',
        [topic],
      );
      expect(rows.map((r) => r.base)).toEqual(['0', '1', '2']);
      // Tamper with the middle segment: flip a bit of its last byte.
      await observer.query(
        `UPDATE bus_segments SET payload = set_byte(payload, length(payload) - 1, get_byte(payload, length(payload) - 1) # 1)
         WHERE topic = $1 AND base_offset = 1`,
        [topic],
      );

      const seen: string[] = [];
      await bus.subscribe({
        groupId,
        topics: [topic],
        batchSize: 10,
        handler: async (batch) => {
          seen.push(...batch.messages.map((m) => m.offset));
        },
      });
      await waitFor(() => reasons.length >= 2, 'two fetches to fail on the tampered segment');

      expect(seen).toEqual(['0']);
      const committed = await observer.query<{ offset: string | null }>(
        'SELECT committed_offset::text AS offset FROM bus_group_partitions WHERE group_id = $1 AND topic = $2',
        [groupId, topic],
      );
      expect(committed.rows.map((r) => r.offset)).toEqual(['1']);
      const haltedAt = logger.entries
        .filter((e) => e.msg.startsWith('bus segment cannot be opened'))
        .map((e) => (e.obj as { offset?: number }).offset);
      expect(new Set(haltedAt)).toEqual(new Set([1]));
    });
  });
}
