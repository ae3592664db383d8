import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Batch,
  type Bus,
  type ConsumedMessage,
  type OutgoingMessage,
  partitionFor,
  type SubscribeOptions,
  type Subscription,
} from '../src/index';
import { deferred, randomId, sleep, waitFor } from './helpers';

/**
 * One contract suite for every Bus adapter. A harness stands for a deployment: `connect()` opens a client as
 * one more process would, `restart()` closes everything (clients and storage) and opens it again.
 */
export interface BusHarness {
  connect(): Promise<Bus>;
  /** A client that `kill()` cuts off its storage mid-flight, as a crashed or partitioned process. */
  connectKillable?(): Promise<{ readonly bus: Bus; kill(): void }>;
  restart(): Promise<void>;
  close(): Promise<void>;
  /** The adapter's session timeout (lease TTL / Kafka session timeout) used by `connect()`. */
  readonly sessionTimeoutMs: number;
  /** How long an idle consumer may take to see a message published by another client. */
  readonly pollIntervalMs: number;
}

export interface BusContractOptions {
  readonly skip?: boolean;
  /** Whether the harness provides `connectKillable` (the lease takeover test needs it). */
  readonly killable: boolean;
}

const PARTITIONS = 4;

interface Seen {
  readonly key: string;
  readonly seq: number;
  readonly partition: number;
  readonly offset: number;
}

function parse(m: ConsumedMessage): Seen {
  const value = JSON.parse(m.value) as { key: string; seq: number };
  return { key: value.key, seq: value.seq, partition: m.partition, offset: Number(m.offset) };
}

/** `perKey` messages for each of `keys` keys, interleaved key by key: k0#0, k1#0, …, k0#1, … */
function interleaved(keys: number, perKey: number, start = 0): OutgoingMessage[] {
  const out: OutgoingMessage[] = [];
  for (let seq = start; seq < start + perKey; seq += 1) {
    for (let k = 0; k < keys; k += 1) {
      const key = `visitor-${k}`;
      out.push({ key, value: JSON.stringify({ key, seq }) });
    }
  }
  return out;
}

const ids = (seen: readonly Seen[]): string[] => seen.map((s) => `${s.key}#${s.seq}`);

export function describeBusContract(
  name: string,
  harnessFactory: () => Promise<BusHarness>,
  options: BusContractOptions,
): void {
  describe.skipIf(options.skip === true)(`Bus contract: ${name}`, () => {
    let harness: BusHarness;
    const subscriptions: Subscription[] = [];
    const parked: (() => void)[] = [];

    beforeAll(async () => {
      harness = await harnessFactory();
    });
    afterEach(async () => {
      for (const release of parked.splice(0)) release();
      await Promise.all(subscriptions.splice(0).map((s) => s.stop({ deadlineMs: 2000 })));
    });
    afterAll(async () => {
      await harness?.close();
    });

    async function topic(bus: Bus, partitions = PARTITIONS): Promise<string> {
      const name = randomId('contract');
      await bus.createTopics([{ name, partitions, replicationFactor: 1 }]);
      return name;
    }

    async function consume(
      bus: Bus,
      opts: Omit<SubscribeOptions, 'handler'> & { handler?: (batch: Batch) => Promise<void> },
      into: Seen[],
    ): Promise<Subscription> {
      const s = await bus.subscribe({
        batchSize: 10,
        ...opts,
        handler: async (batch) => {
          await opts.handler?.(batch);
          into.push(...batch.messages.map(parse));
        },
      });
      subscriptions.push(s);
      return s;
    }

    const waitForCount = (seen: readonly Seen[], n: number, what: string) =>
      waitFor(
        () => seen.length >= n,
        `${n} messages (${what}); got ${seen.length}`,
        20 * harness.sessionTimeoutMs,
      );

    it('publish resolves only after a durable write: the messages survive a restart, where the receipts say', async () => {
      let bus = await harness.connect();
      const t = await topic(bus);
      const messages = interleaved(10, 10);
      const receipts = await bus.publish(t, messages);
      // Each receipt names a partition and the offset of the call's first message there.
      const expected = new Map<string, number>();
      for (const r of receipts) {
        expect(r.topic).toBe(t);
        let offset = Number(r.baseOffset);
        for (const m of messages.filter((msg) => partitionFor(msg.key, PARTITIONS) === r.partition)) {
          expected.set(`${r.partition}@${offset}`, JSON.parse(m.value).seq as number);
          offset += 1;
        }
      }
      expect(receipts.reduce((n, r) => n + r.count, 0)).toBe(100);

      await harness.restart();
      bus = await harness.connect();
      const seen: Seen[] = [];
      await consume(bus, { groupId: randomId('g'), topics: [t] }, seen);
      await waitForCount(seen, 100, 'after restart');
      for (const s of seen) {
        expect(s.partition).toBe(partitionFor(s.key, PARTITIONS));
        expect(expected.get(`${s.partition}@${s.offset}`)).toBe(s.seq);
      }
    });

    it('refuses a publish holding a message over maxMessageBytes before writing any of it', async () => {
      const bus = await harness.connect();
      const t = await topic(bus);
      const fits = { key: 'k-1', value: JSON.stringify({ seq: 1 }) };
      const over = { key: 'k-2', value: `person@example.com${'x'.repeat(bus.maxMessageBytes)}` };
      await expect(bus.publish(t, [fits, over])).rejects.toMatchObject({
        code: 'bus_invalid_message',
        retryable: false,
        message: expect.not.stringContaining('person@example.com'),
      });
      await bus.publish(t, [{ key: 'k-1', value: JSON.stringify({ seq: 2 }) }]);
      const seen: Seen[] = [];
      await consume(bus, { groupId: randomId('g'), topics: [t] }, seen);
      await waitForCount(seen, 1, 'the publish after the refused one');
      await new Promise((resolve) => setTimeout(resolve, 5 * harness.pollIntervalMs));
      expect(seen.map((s) => s.seq)).toEqual([2]);
    });

    it('keeps per-key order across many interleaved keys and publish calls', async () => {
      const bus = await harness.connect();
      const t = await topic(bus);
      for (let chunk = 0; chunk < 5; chunk += 1) await bus.publish(t, interleaved(25, 8, chunk * 8));
      const seen: Seen[] = [];
      await consume(bus, { groupId: randomId('g'), topics: [t], batchSize: 7 }, seen);
      await waitForCount(seen, 1000, 'all');
      await sleep(harness.pollIntervalMs * 3);
      expect(seen).toHaveLength(1000);
      const byKey = new Map<string, number[]>();
      for (const s of seen) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s.seq]);
      expect(byKey.size).toBe(25);
      for (const seqs of byKey.values()) expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i));
    });

    it('accepts concurrent publish calls from many producers without losing any', async () => {
      const bus = await harness.connect();
      const t = await topic(bus);
      const calls = Array.from({ length: 50 }, (_, i) =>
        bus.publish(t, [{ key: `k${i % 7}`, value: JSON.stringify({ key: `p${i}`, seq: 0 }) }]),
      );
      const receipts = (await Promise.all(calls)).flat();
      expect(new Set(receipts.map((r) => `${r.partition}@${r.baseOffset}`)).size).toBe(50);
      const seen: Seen[] = [];
      await consume(bus, { groupId: randomId('g'), topics: [t] }, seen);
      await waitForCount(seen, 50, 'all');
      expect(new Set(seen.map((s) => s.key)).size).toBe(50);
    });

    it('redelivers a batch whose handler threw, and then moves on', async () => {
      const bus = await harness.connect();
      const t = await topic(bus, 1);
      await bus.publish(t, interleaved(1, 30));
      const seen: Seen[] = [];
      let failures = 0;
      await consume(
        bus,
        {
          groupId: randomId('g'),
          topics: [t],
          handler: async (batch) => {
            if (batch.messages[0]?.offset === '10' && failures < 2) {
              failures += 1;
              throw new Error('downstream unavailable');
            }
          },
        },
        seen,
      );
      await waitForCount(seen, 30, 'all after failures');
      expect(failures).toBe(2);
      expect(seen.map((s) => s.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    });

    it('loses nothing when a consumer dies mid-batch: the next member of the group gets everything uncommitted', async () => {
      const busA = await harness.connect();
      const t = await topic(busA);
      await busA.publish(t, interleaved(20, 10));
      const group = randomId('g');
      const seenA: Seen[] = [];
      let hung: readonly ConsumedMessage[] = [];
      const started = deferred();
      const a = await consume(
        busA,
        {
          groupId: group,
          topics: [t],
          handler: async (batch) => {
            if (seenA.length >= 30 && hung.length === 0) {
              hung = batch.messages;
              started.resolve();
              await new Promise<void>((resolve) => parked.push(resolve)); // never finishes on its own
            }
          },
        },
        seenA,
      );
      await started.promise;
      // Abandon A without letting its batch finish: no commit for it, like a killed process.
      await a.stop({ deadlineMs: 0 });

      const busB = await harness.connect();
      const seenB: Seen[] = [];
      await consume(busB, { groupId: group, topics: [t] }, seenB);
      const all = interleaved(20, 10).map((m) => {
        const v = JSON.parse(m.value) as { key: string; seq: number };
        return `${v.key}#${v.seq}`;
      });
      await waitFor(
        () => new Set([...ids(seenA), ...ids(seenB)]).size === all.length,
        'A and B together to have seen everything',
        20 * harness.sessionTimeoutMs,
      );
      const inB = new Set(ids(seenB));
      for (const m of hung.map(parse)) expect(inB.has(`${m.key}#${m.seq}`)).toBe(true);
    });

    it('never lets two members of a group consume one partition at once; together they consume everything once', async () => {
      const busA = await harness.connect();
      const busB = await harness.connect();
      const t = await topic(busA);
      const group = randomId('g');
      const active = new Map<number, string>();
      const overlaps: string[] = [];
      const guard = (who: string) => async (batch: Batch) => {
        const other = active.get(batch.partition);
        if (other !== undefined) overlaps.push(`${who} and ${other} on partition ${batch.partition}`);
        active.set(batch.partition, who);
        await sleep(5);
        active.delete(batch.partition);
      };
      const seenA: Seen[] = [];
      const seenB: Seen[] = [];
      // A starts alone and is busy with a backlog when B joins: the hand-over must wait for A's batches.
      await busA.publish(t, interleaved(30, 5));
      const a = await consume(busA, { groupId: group, topics: [t], handler: guard('A') }, seenA);
      await waitFor(() => seenA.length >= 20, 'A to be busy');
      const b = await consume(busB, { groupId: group, topics: [t], handler: guard('B') }, seenB);
      await waitFor(
        () =>
          a.assignments().length > 0 &&
          b.assignments().length > 0 &&
          a.assignments().length + b.assignments().length === PARTITIONS,
        'the group to settle on a split of the partitions',
        20 * harness.sessionTimeoutMs,
      );
      const fromA = new Set(a.assignments().map((p) => p.partition));
      expect(b.assignments().some((p) => fromA.has(p.partition))).toBe(false);

      await busA.publish(t, interleaved(30, 5, 5));
      await waitFor(
        () => seenA.length + seenB.length >= 300,
        'all 300 messages',
        20 * harness.sessionTimeoutMs,
      );
      await sleep(harness.pollIntervalMs * 3);
      expect(overlaps).toEqual([]);
      expect(seenA.length).toBeGreaterThan(0);
      expect(seenB.length).toBeGreaterThan(0);
      const inA = new Set(ids(seenA));
      expect(ids(seenB).filter((id) => inA.has(id))).toEqual([]);
      expect(new Set([...ids(seenA), ...ids(seenB)]).size).toBe(300);
      expect(seenA.length + seenB.length).toBe(300);
    });

    it('resumes after the last committed offset when the group comes back after a restart', async () => {
      let bus = await harness.connect();
      const t = await topic(bus);
      const group = randomId('g');
      await bus.publish(t, interleaved(8, 5));
      const first: Seen[] = [];
      const s = await consume(bus, { groupId: group, topics: [t] }, first);
      await waitForCount(first, 40, 'first run');
      await s.stop();

      await harness.restart();
      bus = await harness.connect();
      await bus.publish(t, interleaved(8, 3, 5));
      const second: Seen[] = [];
      await consume(bus, { groupId: group, topics: [t] }, second);
      await waitForCount(second, 24, 'second run');
      await sleep(harness.pollIntervalMs * 3);
      expect(second.map((m) => m.seq).every((seq) => seq >= 5)).toBe(true);
      expect(second).toHaveLength(24);
    });

    it.skipIf(!options.killable)(
      'hands a dead consumer’s partitions to another member once its lease expires',
      async () => {
        const connectKillable = harness.connectKillable;
        if (connectKillable === undefined) throw new Error('harness without connectKillable');
        const victim = await connectKillable.call(harness);
        const t = await topic(victim.bus);
        const group = randomId('g');
        const seenA: Seen[] = [];
        const a = await consume(victim.bus, { groupId: group, topics: [t] }, seenA);
        await waitFor(() => a.assignments().length === PARTITIONS, 'A to hold every partition');
        await victim.bus.publish(t, interleaved(12, 5));
        await waitForCount(seenA, 60, 'A before it dies');

        victim.kill();
        const killedAt = Date.now();
        const survivor = await harness.connect();
        await survivor.publish(t, interleaved(12, 5, 5));
        const seenB: Seen[] = [];
        let firstAt = 0;
        const b = await consume(
          survivor,
          {
            groupId: group,
            topics: [t],
            handler: async () => {
              firstAt ||= Date.now();
            },
          },
          seenB,
        );
        await waitForCount(seenB, 60, 'B after the takeover');
        // B could only take over after A's leases ran out.
        expect(firstAt - killedAt).toBeGreaterThanOrEqual(harness.sessionTimeoutMs * 0.5);
        expect(b.assignments()).toHaveLength(PARTITIONS);
        expect(seenB.every((m) => m.seq >= 5)).toBe(true);
        expect(new Set(ids(seenB)).size).toBe(60);
      },
    );

    it('refuses the commit of a consumer whose partition was taken over (fencing)', async () => {
      const busA = await harness.connect();
      const t = await topic(busA, 1);
      const group = randomId('g');
      await busA.publish(t, interleaved(1, 30));
      const stalled = deferred();
      const wake = deferred();
      parked.push(() => wake.resolve());
      let woken = false;
      const afterWake: Seen[] = [];
      await consume(
        busA,
        {
          groupId: group,
          topics: [t],
          handler: async (batch) => {
            if (woken) {
              afterWake.push(...batch.messages.map(parse));
              return;
            }
            stalled.resolve();
            // Stuck past the session timeout without heartbeat(): to the group, A is dead.
            await wake.promise;
            woken = true;
          },
        },
        [],
      );
      await stalled.promise;

      const busB = await harness.connect();
      const seenB: Seen[] = [];
      const b = await consume(busB, { groupId: group, topics: [t] }, seenB);
      await waitForCount(seenB, 30, 'B, after A’s lease expired');
      expect(seenB.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      await b.stop(); // B has committed offset 30 and left the group.

      // A wakes up and tries to commit offset 10 over B's 30. Refused, it rejoins and must resume at 30; had
      // its commit gone through, it would consume 10..29 a second time.
      wake.resolve();
      await busA.publish(t, interleaved(1, 5, 30));
      await waitFor(
        () => afterWake.some((m) => m.seq === 34),
        'A to consume the new messages',
        20 * harness.sessionTimeoutMs,
      );
      await sleep(harness.pollIntervalMs * 3);
      expect(afterWake.map((m) => m.seq)).toEqual([30, 31, 32, 33, 34]);
    });

    it('pause stops handing out batches and resume picks up where it left off', async () => {
      const bus = await harness.connect();
      const t = await topic(bus);
      const seen: Seen[] = [];
      const s = await consume(bus, { groupId: randomId('g'), topics: [t] }, seen);
      await waitFor(() => s.assignments().length === PARTITIONS, 'assignment');
      s.pause();
      expect(s.paused).toBe(true);
      await bus.publish(t, interleaved(10, 2));
      await sleep(harness.pollIntervalMs * 5 + 200);
      expect(seen).toHaveLength(0);
      s.resume();
      expect(s.paused).toBe(false);
      await waitForCount(seen, 20, 'after resume');
    });

    it('stop lets the in-flight batch finish and commits it, and fetches nothing more', async () => {
      const bus = await harness.connect();
      const t = await topic(bus, 1);
      const group = randomId('g');
      await bus.publish(t, interleaved(1, 20));
      const seen: Seen[] = [];
      const started = deferred();
      const s = await consume(
        bus,
        {
          groupId: group,
          topics: [t],
          handler: async () => {
            started.resolve();
            await sleep(300);
          },
        },
        seen,
      );
      await started.promise;
      const t0 = Date.now();
      await s.stop({ deadlineMs: 10_000 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
      expect(seen.map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i));

      const next: Seen[] = [];
      await consume(bus, { groupId: group, topics: [t] }, next);
      await waitForCount(next, 10, 'the rest');
      await sleep(harness.pollIntervalMs * 3);
      expect(next.map((m) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 10));
    });

    it('a new group with fromBeginning: false starts at the end of the topic', async () => {
      const bus = await harness.connect();
      const t = await topic(bus);
      await bus.publish(t, interleaved(5, 2));
      const seen: Seen[] = [];
      const s = await consume(bus, { groupId: randomId('g'), topics: [t], fromBeginning: false }, seen);
      await waitFor(() => s.assignments().length === PARTITIONS, 'assignment', 20 * harness.sessionTimeoutMs);
      await bus.publish(t, interleaved(5, 1, 2));
      await waitForCount(seen, 5, 'new messages');
      await sleep(harness.pollIntervalMs * 3);
      expect(seen.map((m) => m.seq)).toEqual([2, 2, 2, 2, 2]);
    });
  });
}
