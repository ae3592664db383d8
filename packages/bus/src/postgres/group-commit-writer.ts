import { type Database, isStoreError } from '@signal/store';
import { z } from 'zod';
import { BusError, describeError } from '../errors';
import type { BusLogger, OutgoingMessage, PublishReceipt } from '../port';
import { type BusCrypto, segmentContext } from '../sealing';
import { encodeSegment } from './segment';

export interface WriterLimits {
  /** Most messages one flush (one transaction) takes from the queue. */
  readonly maxFlushMessages: number;
  /** Most records in one segment row. */
  readonly maxSegmentRecords: number;
  /** Most characters of keys and values in one segment row (about its bytes for ASCII text; headers not counted). */
  readonly maxSegmentChars: number;
  /** Compress runs of one publish call with one key (ADR 0011-compressed-bus-runs). */
  readonly compressRuns: boolean;
}

/** One publish call, already partitioned. Messages of a partition keep the caller's order. */
export interface PartitionedPublish {
  readonly topic: string;
  readonly byPartition: ReadonlyMap<number, readonly OutgoingMessage[]>;
  readonly count: number;
  /** The caller's promise that the call is one request's messages (PublishOptions.compressible). */
  readonly compressible: boolean;
}

interface Pending extends PartitionedPublish {
  resolve(receipts: PublishReceipt[]): void;
  reject(err: unknown): void;
}

interface Slice {
  readonly request: number;
  readonly messages: readonly OutgoingMessage[];
  readonly compressible: boolean;
}

interface PartitionGroup {
  readonly topic: string;
  readonly partition: number;
  readonly slices: Slice[];
}

const headRow = z.object({
  topic: z.string(),
  partition: z.number().int(),
  next_offset: z.string().regex(/^\d+$/),
});

function messageChars(m: OutgoingMessage): number {
  return m.key.length + m.value.length + 8;
}

/**
 * Group commit: publishes that arrive while a transaction is running wait for the next one, which takes them
 * all. Under load one transaction carries thousands of events (one segment row per partition), so writes
 * cost one commit per flush instead of one per call; when idle a publish is flushed after one event-loop turn (no timed linger).
 * A publish resolves only after its transaction committed; if the transaction fails every publish in it is
 * rejected with `bus_publish_failed`. Its messages are then not visible, except when the COMMIT itself failed
 * (connection lost, or on PGlite a failed fsync): as with any database its outcome is unknown, so a rejected
 * publish may still have been stored. The gateway answers 503 and senders retry with the same messageId, which
 * the event processor deduplicates.
 */
export class GroupCommitWriter {
  private readonly queue: Pending[] = [];
  private draining = false;
  private idle: Promise<void> = Promise.resolve();
  /** PGlite only: each partition's next offset as of this writer's last commit (see `writeOptimistic`). */
  private readonly heads = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly crypto: BusCrypto,
    private readonly limits: WriterLimits,
    private readonly logger: BusLogger,
    private readonly onCommitted: (topics: ReadonlySet<string>) => void,
  ) {}

  submit(publish: PartitionedPublish): Promise<PublishReceipt[]> {
    return new Promise<PublishReceipt[]>((resolve, reject) => {
      this.queue.push({ ...publish, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        this.idle = this.drain();
      }
    });
  }

  /** Resolves once every publish submitted so far has been settled. */
  async flushed(): Promise<void> {
    while (this.draining) await this.idle;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Wait one event-loop turn before each flush (no timer, no added latency when idle). PGlite runs a
        // transaction without yielding to I/O, so flushing at once would take only the first request of an
        // I/O burst and make every other one wait for a commit of its own; after setImmediate every caller
        // whose input arrived in this turn (or whose last publish just committed) has queued and rides the
        // same transaction. Measured on the gateway: ~1 publish per commit before, 4× the throughput after.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.take();
        try {
          const receipts = await this.write(batch);
          batch.forEach((p, i) => {
            p.resolve(receipts[i] ?? []);
          });
          this.onCommitted(new Set(batch.map((p) => p.topic)));
        } catch (err) {
          this.logger.error({ err: describeError(err), publishes: batch.length }, 'bus publish failed');
          const failure = new BusError('bus_publish_failed', 'the bus could not durably write the messages', {
            cause: err,
          });
          for (const p of batch) p.reject(failure);
        }
      }
    } finally {
      // Set in the same synchronous step as the last queue check, so no submit can slip between them.
      this.draining = false;
    }
  }

  private take(): Pending[] {
    const batch: Pending[] = [];
    let messages = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending;
      if (batch.length > 0 && messages + next.count > this.limits.maxFlushMessages) break;
      batch.push(next);
      messages += next.count;
      this.queue.shift();
    }
    return batch;
  }

  private async write(batch: readonly Pending[]): Promise<PublishReceipt[][]> {
    const groups = groupByPartition(batch);
    const predicted = this.db.kind === 'pglite' ? this.predictedHeads(groups) : undefined;
    if (predicted !== undefined) {
      const receipts = await this.writeOptimistic(groups, predicted, batch.length);
      if (receipts !== undefined) return receipts;
    }
    const plan = await this.db.transaction(async (tx) => {
      // Lock the partitions' head rows in one statement, in a stable order (no deadlock between writers of
      // several processes); a concurrent writer of the same partition waits here until we commit, so
      // offsets become visible in order.
      const { rows } = await tx.query(
        `SELECT topic, partition, next_offset::text AS next_offset FROM bus_partitions
         WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::integer[]))
         ORDER BY topic, partition
         FOR UPDATE`,
        [groups.map((g) => g.topic), groups.map((g) => g.partition)],
      );
      const heads = new Map<string, number>();
      for (const raw of rows) {
        const row = headRow.parse(raw);
        heads.set(partKey(row.topic, row.partition), Number(row.next_offset));
      }
      const planned = this.plan(groups, heads, batch.length);
      const { sql, params } = this.insertStatement(planned.segments);
      await tx.query(sql, params);
      await tx.query(
        `UPDATE bus_partitions AS p SET next_offset = h.next_offset
         FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS h(topic, partition, next_offset)
         WHERE p.topic = h.topic AND p.partition = h.partition`,
        [
          planned.next.map((h) => h.topic),
          planned.next.map((h) => h.partition),
          planned.next.map((h) => String(h.next)),
        ],
      );
      return planned;
    });
    this.remember(plan.next);
    return plan.receipts;
  }

  private predictedHeads(groups: readonly PartitionGroup[]): Map<string, number> | undefined {
    const heads = new Map<string, number>();
    for (const g of groups) {
      const head = this.heads.get(partKey(g.topic, g.partition));
      if (head === undefined) return undefined;
      heads.set(partKey(g.topic, g.partition), head);
    }
    return heads;
  }

  private remember(next: readonly PlannedHead[]): void {
    if (this.db.kind !== 'pglite') return;
    if (this.heads.size > 65_536) this.heads.clear();
    for (const h of next) this.heads.set(partKey(h.topic, h.partition), h.next);
  }

  /**
   * PGlite, where one process is normally the only writer: one statement instead of a five-call transaction
   * (BEGIN, lock heads, insert, advance heads, COMMIT). The segments are sealed for the offsets this writer
   * last committed; `bus_append_segments` (migration bus/0003) advances each head only where it still holds
   * that offset, inserts the segments only if every head matched, and otherwise raises, which rolls the whole
   * statement back — another bus object on the same database wrote in between. A PL/pgSQL function because
   * its statements are planned once per session: the same work as one CTE statement cost ~1 ms more CPU per
   * flush on PGlite, paid again on every flush. Then the locking path runs with fresh
   * heads. Undefined means "use the locking path". The function is bus/0004's version, taking the sealed
   * segments as `bytea[]`.
   */
  private async writeOptimistic(
    groups: readonly PartitionGroup[],
    heads: ReadonlyMap<string, number>,
    requests: number,
  ): Promise<PublishReceipt[][] | undefined> {
    const planned = this.plan(groups, heads, requests);
    const expected = planned.next.map((h) => String(heads.get(partKey(h.topic, h.partition))));
    const segs = planned.segments;
    // Each sealed segment is a scalar bytea parameter (bound as binary: its bytes as is) gathered by
    // ARRAY[...] on the server; as one array parameter PGlite would format every segment into an array
    // literal in JavaScript.
    const payloads = segs.map((_, i) => `$${i + 10}::bytea`).join(', ');
    try {
      await this.db.query(
        `SELECT bus_append_segments($1::text[], $2::integer[], $3::bigint[], $4::bigint[],
           $5::text[], $6::integer[], $7::bigint[], $8::integer[], ARRAY[${payloads}]::bytea[], $9::text) AS advanced`,
        [
          planned.next.map((h) => h.topic),
          planned.next.map((h) => h.partition),
          expected,
          planned.next.map((h) => String(h.next)),
          segs.map((seg) => seg.topic),
          segs.map((seg) => seg.partition),
          segs.map((seg) => String(seg.baseOffset)),
          segs.map((seg) => seg.count),
          this.crypto.keyring.currentKeyId,
          ...segs.map((seg) => seg.payload),
        ],
      );
    } catch (err) {
      this.heads.clear();
      // Only stale heads (bus_append_segments raises 40001, having written nothing) are worth the locking
      // path. Any other failure is reported as is: its outcome may be unknown (a failed COMMIT), and writing
      // the same messages again on another path could store them twice.
      if (!(isStoreError(err) && err.code === 'serialization_failure')) throw err;
      this.logger.debug({ err: describeError(err) }, 'optimistic bus write refused; taking the locking path');
      return undefined;
    }
    this.remember(planned.next);
    return planned.receipts;
  }

  /** Offsets, receipts and sealed segments for a flush, given each partition's current head. */
  private plan(
    groups: readonly PartitionGroup[],
    heads: ReadonlyMap<string, number>,
    requests: number,
  ): Plan {
    const receipts: PublishReceipt[][] = Array.from({ length: requests }, () => []);
    const segments: PlannedSegment[] = [];
    const next: PlannedHead[] = [];
    for (const group of groups) {
      const head = heads.get(partKey(group.topic, group.partition));
      if (head === undefined) {
        throw new BusError(
          'bus_unknown_topic',
          `partition ${group.partition} of ${group.topic} does not exist`,
        );
      }
      let offset = head;
      let segment: OutgoingMessage[] = [];
      // Lengths of the segment's runs of messages from one publish call with one key: the only messages
      // that may share a compression context (ADR 0011-compressed-bus-runs).
      let runs: number[] = [];
      let runSlice: Slice | undefined;
      let segmentBase = offset;
      let segmentChars = 0;
      const cut = (): void => {
        if (segment.length === 0) return;
        // Sealed to its row: a segment copied to another topic, partition or offset does not open. Binary
        // ciphertext of the binary form: no JSON escaping, no base64 (ADR 0010-binary-bus-segments).
        const where = { topic: group.topic, partition: group.partition, baseOffset: segmentBase };
        segments.push({
          ...where,
          count: segment.length,
          payload: this.crypto.seal(
            encodeSegment(segment, this.limits.compressRuns ? runs : undefined),
            segmentContext(where),
          ),
        });
        segment = [];
        runs = [];
        runSlice = undefined;
        segmentChars = 0;
      };
      for (const slice of group.slices) {
        (receipts[slice.request] as PublishReceipt[]).push({
          topic: group.topic,
          partition: group.partition,
          baseOffset: String(offset),
          count: slice.messages.length,
        });
        for (const message of slice.messages) {
          const chars = messageChars(message);
          if (
            segment.length >= this.limits.maxSegmentRecords ||
            (segment.length > 0 && segmentChars + chars > this.limits.maxSegmentChars)
          ) {
            cut();
          }
          if (segment.length === 0) segmentBase = offset;
          const previous = segment[segment.length - 1];
          if (
            slice.compressible &&
            runSlice === slice &&
            previous !== undefined &&
            previous.key === message.key
          ) {
            runs[runs.length - 1] = (runs[runs.length - 1] as number) + 1;
          } else {
            runs.push(1);
            runSlice = slice;
          }
          segment.push(message);
          segmentChars += chars;
          offset += 1;
        }
      }
      cut();
      next.push({ topic: group.topic, partition: group.partition, next: offset });
    }
    return { receipts, segments, next };
  }

  private insertStatement(segments: readonly PlannedSegment[]): { sql: string; params: unknown[] } {
    const { values, params } = this.segmentValues(segments, 0);
    return {
      sql: `INSERT INTO bus_segments (topic, partition, base_offset, record_count, payload, key_id) VALUES ${values}`,
      params,
    };
  }

  /**
   * One VALUES row per segment, numbered from `$first + 1`. The sealed segments are bytea parameters, bound
   * as binary on both adapters (pg sends a Buffer as is; the store's PGlite serializer passes it through), so
   * the bytes go to the server without hex or escaping.
   */
  private segmentValues(
    segments: readonly PlannedSegment[],
    first: number,
  ): { values: string; params: unknown[] } {
    const params: unknown[] = [this.crypto.keyring.currentKeyId];
    const keyId = `$${first + 1}::text`;
    const rows: string[] = [];
    for (const seg of segments) {
      const n = first + params.length;
      rows.push(
        `($${n + 1}::text, $${n + 2}::integer, $${n + 3}::bigint, $${n + 4}::integer, $${n + 5}::bytea, ${keyId})`,
      );
      params.push(seg.topic, seg.partition, String(seg.baseOffset), seg.count, seg.payload);
    }
    return { values: rows.join(', '), params };
  }
}

interface PlannedSegment {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: number;
  readonly count: number;
  /** The v2 segment sealed in the binary v1 ciphertext form. */
  readonly payload: Buffer;
}

interface PlannedHead {
  readonly topic: string;
  readonly partition: number;
  readonly next: number;
}

interface Plan {
  readonly receipts: PublishReceipt[][];
  readonly segments: PlannedSegment[];
  readonly next: PlannedHead[];
}

const partKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

function groupByPartition(batch: readonly Pending[]): PartitionGroup[] {
  const groups = new Map<string, PartitionGroup>();
  batch.forEach((p, request) => {
    for (const [partition, messages] of p.byPartition) {
      const id = partKey(p.topic, partition);
      let group = groups.get(id);
      if (group === undefined) {
        group = { topic: p.topic, partition, slices: [] };
        groups.set(id, group);
      }
      group.slices.push({ request, messages, compressible: p.compressible });
    }
  });
  return [...groups.values()];
}
