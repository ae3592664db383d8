import { randomUUID } from 'node:crypto';
import type { Database } from '@signal/store';
import { z } from 'zod';
import { BusError, describeError } from '../errors';
import type {
  Batch,
  BusLogger,
  ConsumedMessage,
  PartitionRef,
  StopOptions,
  SubscribeOptions,
  Subscription,
} from '../port';
import {
  type BusCrypto,
  openBinaryPayload,
  openPayload,
  segmentContext,
  type UnreadableListener,
  unreadable,
  unreadableReason,
} from '../sealing';
import { decodeJsonLines, decodeSegment, type StoredRecord } from './segment';

export interface ConsumerTimings {
  /** A lease lives this long without renewal; also the longest a batch may run without `heartbeat()`. */
  readonly sessionTimeoutMs: number;
  /** How often membership and leases are renewed and the assignment recomputed. */
  readonly heartbeatIntervalMs: number;
  /** How long an idle subscription waits before looking for new messages (local publishes wake it at once). */
  readonly pollIntervalMs: number;
  /** First redelivery delay after a handler threw; doubles per consecutive failure up to the maximum. */
  readonly retryBackoffMs: number;
  readonly maxRetryBackoffMs: number;
  readonly defaultStopDeadlineMs: number;
}

interface OwnedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  /** Next offset to hand out; equals the committed offset between batches. */
  position: number;
  /** Local monotonic time until which the lease is surely held (renewal sent time + TTL). */
  leaseValidUntil: number;
  /**
   * Assigned to another member, or being released: no new batch starts on it; the in-flight one (if any)
   * finishes, then the partition is released.
   */
  revoking: boolean;
  consecutiveFailures: number;
  retryAt: number;
  segment: { readonly base: number; readonly timestamp: number; readonly records: StoredRecord[] } | null;
}

interface InFlight {
  readonly part: OwnedPartition;
  lastProgress: number;
  readonly controller: AbortController;
}

const memberRow = z.object({ consumer_id: z.string() });
const groupPartitionRow = z.object({ topic: z.string(), partition: z.number().int() });
const acquiredRow = z.object({
  topic: z.string(),
  partition: z.number().int(),
  epoch: z.string(),
  committed_offset: z.string().nullable(),
});
const headRow = z.object({ topic: z.string(), partition: z.number().int(), next_offset: z.string() });
const segmentRow = z.object({
  base: z.string(),
  record_count: z.number().int().positive(),
  ts: z.number(),
  /** v2 segment in the binary ciphertext form (written since bus/0004). */
  payload: z.instanceof(Uint8Array).nullable(),
  /** v1 segment (JSON lines) in the ciphertext text form, or plaintext below `sealed_from` (bus/0002). */
  records: z.string().nullable(),
  key_id: z.string().nullable(),
  legacy: z.boolean(),
});

const partKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const now = (): number => performance.now();

/**
 * One member of a consumer group on the PostgreSQL bus.
 *
 * Assignment: live members (rows in `bus_members`, renewed every heartbeat) are sorted by id and the
 * subscribed (topic, partition) pairs are dealt round-robin among them; each member acquires its share when
 * a partition is free or its lease has expired, and releases partitions dealt to someone else once their
 * in-flight batch has committed. Every acquisition bumps the partition's `epoch`; renewals and commits name
 * the epoch they hold, so a member that lost a partition (expired lease, taken over) can neither renew nor
 * commit it. A member whose batch runs longer than the session timeout without `heartbeat()` stops
 * renewing anything, exactly like a dead one, and its partitions move on.
 *
 * Stopping: the member leaves the group and releases its idle partitions at once, and keeps renewing the
 * lease of the batch in flight until that batch has committed (or the stop deadline passed), so the rest of
 * the group takes over everything but that batch's partition straight away, and that one only after it.
 */
export class PostgresSubscription implements Subscription {
  readonly consumerId: string;
  private readonly topics: readonly string[];
  private readonly batchSize: number;
  private readonly fromBeginning: boolean;
  private readonly owned = new Map<string, OwnedPartition>();
  private inFlight: InFlight | null = null;
  private pausedFlag = false;
  private stopping = false;
  private abandoned = false;
  private stopPromise: Promise<void> | null = null;
  private loop: Promise<void> = Promise.resolve();
  private tickChain: Promise<void> = Promise.resolve();
  private tickTimer: NodeJS.Timeout | null = null;
  private wakeUp: (() => void) | null = null;

  constructor(
    private readonly db: Database,
    private readonly crypto: BusCrypto,
    private readonly onUnreadable: UnreadableListener | undefined,
    private readonly options: SubscribeOptions,
    private readonly timings: ConsumerTimings,
    private readonly logger: BusLogger,
    clientId: string,
    private readonly onStopped: (subscription: PostgresSubscription) => void,
  ) {
    this.consumerId = `${clientId}-${randomUUID()}`;
    this.topics = [...new Set(options.topics)].sort();
    this.batchSize = options.batchSize ?? 100;
    this.fromBeginning = options.fromBeginning ?? true;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  get groupId(): string {
    return this.options.groupId;
  }

  get subscribedTopics(): readonly string[] {
    return this.topics;
  }

  async start(): Promise<void> {
    await this.tick();
    // Stopped (the bus closed) while joining: `shutdown` has released what that first heartbeat acquired.
    if (this.stopping) return;
    this.tickTimer = setInterval(() => {
      void this.tick();
    }, this.timings.heartbeatIntervalMs);
    this.loop = this.run();
  }

  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    this.pausedFlag = false;
    this.wake();
  }

  assignments(): readonly PartitionRef[] {
    return [...this.owned.values()]
      .filter((p) => p.leaseValidUntil > now())
      .map((p) => ({ topic: p.topic, partition: p.partition }));
  }

  /** Wakes an idle loop (a local publish to one of our topics, a resume, a stop, a new assignment). */
  wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = null;
    wake?.();
  }

  stop(options: StopOptions = {}): Promise<void> {
    this.stopPromise ??= this.shutdown(options.deadlineMs ?? this.timings.defaultStopDeadlineMs);
    return this.stopPromise;
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────────────

  private async shutdown(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.wake();
    // The heartbeat keeps running until the loop has finished (see `drainHeartbeatOnce`); this first one
    // leaves the group and hands the idle partitions to the others without waiting for the interval.
    void this.tick();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.loop.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    const stuck = finished ? null : this.inFlight;
    if (stuck !== null) {
      // The batch keeps running in the background but will not commit; its partition is left to expire
      // rather than released, so nobody else processes the same messages while it is still running.
      this.abandoned = true;
      stuck.controller.abort(new Error('subscription stopped before the batch finished'));
      this.logger.warn(
        { topic: stuck.part.topic, partition: stuck.part.partition, deadlineMs },
        'stop deadline passed with a batch in flight; it will be redelivered',
      );
    }
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    await this.tickChain;
    try {
      const keep = stuck === null ? [] : [partKey(stuck.part.topic, stuck.part.partition)];
      const release = [...this.owned.values()].filter((p) => !keep.includes(partKey(p.topic, p.partition)));
      await this.release(release);
      await this.leaveGroup();
    } catch (err) {
      this.logger.warn(
        { err: describeError(err) },
        'could not release partitions on stop; their leases will expire',
      );
    }
    this.owned.clear();
    this.onStopped(this);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // ── membership and leases ──────────────────────────────────────────────────────────────────────────

  /** Runs one heartbeat, never two at once. */
  private tick(): Promise<void> {
    this.tickChain = this.tickChain.then(async () => {
      try {
        await (this.stopping ? this.drainHeartbeatOnce() : this.heartbeatOnce());
      } catch (err) {
        this.logger.warn({ err: describeError(err), groupId: this.groupId }, 'bus heartbeat failed');
      }
    });
    return this.tickChain;
  }

  private stalled(): boolean {
    const f = this.inFlight;
    return f !== null && now() - f.lastProgress > this.timings.sessionTimeoutMs;
  }

  private async heartbeatOnce(): Promise<void> {
    if (this.stalled()) return;
    const ttl = this.timings.sessionTimeoutMs;
    const sentAt = now();
    const group = this.groupId;
    await this.db.query(
      `INSERT INTO bus_members (group_id, consumer_id, expires_at)
       VALUES ($1, $2, now() + $3::integer * interval '1 millisecond')
       ON CONFLICT (group_id, consumer_id) DO UPDATE SET expires_at = excluded.expires_at`,
      [group, this.consumerId, ttl],
    );
    await this.db.query('DELETE FROM bus_members WHERE group_id = $1 AND expires_at < now()', [group]);
    const members = (
      await this.db.query('SELECT consumer_id FROM bus_members WHERE group_id = $1 ORDER BY consumer_id', [
        group,
      ])
    ).rows.map((r) => memberRow.parse(r).consumer_id);
    await this.db.query(
      `INSERT INTO bus_group_partitions (group_id, topic, partition)
       SELECT $1, topic, partition FROM bus_partitions WHERE topic = ANY($2::text[])
       ON CONFLICT (group_id, topic, partition) DO NOTHING`,
      [group, this.topics],
    );
    const all = (
      await this.db.query(
        `SELECT topic, partition FROM bus_group_partitions
         WHERE group_id = $1 AND topic = ANY($2::text[]) ORDER BY topic, partition`,
        [group, this.topics],
      )
    ).rows.map((r) => groupPartitionRow.parse(r));
    const me = members.indexOf(this.consumerId);
    const desired = new Set(
      me < 0 ? [] : all.filter((_, i) => i % members.length === me).map((p) => partKey(p.topic, p.partition)),
    );

    await this.renew(ttl, sentAt);

    // Decided and marked (`release` sets `revoking` before its first await) in one synchronous step, so the
    // run loop cannot start a batch on a partition between this check and the release reaching the database.
    const toRelease: OwnedPartition[] = [];
    for (const [key, part] of this.owned) {
      if (desired.has(key)) {
        part.revoking = false;
      } else if (this.inFlight?.part === part) {
        part.revoking = true;
      } else {
        toRelease.push(part);
      }
    }
    await this.release(toRelease);

    const wanted = [...desired].filter((key) => !this.owned.has(key));
    if (wanted.length > 0 && !this.stopping) await this.acquire(wanted, ttl, sentAt);
  }

  /**
   * The heartbeat of a stopping member. It has left the group, so the others deal its partitions among
   * themselves at once; it hands back every partition without a batch in flight and keeps renewing the lease
   * of the one in flight, so nobody else gets that batch's messages while it drains (it may run until the
   * stop deadline, as long as a lease). Nothing new is acquired; past the deadline nothing is renewed.
   */
  private async drainHeartbeatOnce(): Promise<void> {
    if (this.abandoned || this.stalled()) return;
    const ttl = this.timings.sessionTimeoutMs;
    const sentAt = now();
    await this.leaveGroup();
    await this.release([...this.owned.values()].filter((p) => this.inFlight?.part !== p));
    await this.renew(ttl, sentAt);
  }

  private async leaveGroup(): Promise<void> {
    await this.db.query('DELETE FROM bus_members WHERE group_id = $1 AND consumer_id = $2', [
      this.groupId,
      this.consumerId,
    ]);
  }

  private async renew(ttl: number, sentAt: number): Promise<void> {
    const held = [...this.owned.values()];
    if (held.length === 0) return;
    const { rows } = await this.db.query(
      `UPDATE bus_group_partitions AS g
       SET lease_expires_at = now() + $3::integer * interval '1 millisecond'
       FROM unnest($4::text[], $5::integer[], $6::bigint[]) AS h(topic, partition, epoch)
       WHERE g.group_id = $1 AND g.owner = $2 AND g.topic = h.topic AND g.partition = h.partition
         AND g.epoch = h.epoch
       RETURNING g.topic, g.partition`,
      [
        this.groupId,
        this.consumerId,
        ttl,
        held.map((p) => p.topic),
        held.map((p) => p.partition),
        held.map((p) => p.epoch),
      ],
    );
    const renewed = new Set(
      rows.map((r) => groupPartitionRow.parse(r)).map((r) => partKey(r.topic, r.partition)),
    );
    for (const part of held) {
      if (renewed.has(partKey(part.topic, part.partition))) {
        part.leaseValidUntil = sentAt + ttl;
      } else {
        this.lose(part, 'lease taken over by another member');
      }
    }
  }

  private async acquire(keys: readonly string[], ttl: number, sentAt: number): Promise<void> {
    const refs = keys.map((key) => {
      const [topic = '', partition = '0'] = key.split('\u0000');
      return { topic, partition: Number(partition) };
    });
    const { rows } = await this.db.query(
      `UPDATE bus_group_partitions AS g
       SET owner = $2, epoch = g.epoch + 1,
           lease_expires_at = now() + $3::integer * interval '1 millisecond',
           committed_offset = COALESCE(g.committed_offset, CASE WHEN $4::boolean THEN NULL ELSE p.next_offset END),
           updated_at = now()
       FROM unnest($5::text[], $6::integer[]) AS d(topic, partition), bus_partitions AS p
       WHERE g.group_id = $1 AND g.topic = d.topic AND g.partition = d.partition
         AND p.topic = g.topic AND p.partition = g.partition
         AND (g.owner IS NULL OR g.lease_expires_at IS NULL OR g.lease_expires_at < now())
       RETURNING g.topic, g.partition, g.epoch::text AS epoch, g.committed_offset::text AS committed_offset`,
      [
        this.groupId,
        this.consumerId,
        ttl,
        this.fromBeginning,
        refs.map((r) => r.topic),
        refs.map((r) => r.partition),
      ],
    );
    for (const raw of rows) {
      const row = acquiredRow.parse(raw);
      this.owned.set(partKey(row.topic, row.partition), {
        topic: row.topic,
        partition: row.partition,
        epoch: row.epoch,
        position: row.committed_offset === null ? 0 : Number(row.committed_offset),
        leaseValidUntil: sentAt + ttl,
        revoking: false,
        consecutiveFailures: 0,
        retryAt: 0,
        segment: null,
      });
      this.logger.debug(
        { groupId: this.groupId, topic: row.topic, partition: row.partition },
        'partition acquired',
      );
    }
    if (rows.length > 0) this.wake();
  }

  /**
   * Hands partitions back to the group. They stop being servable before the update is sent: once it lands
   * another member may take them, so no batch may start on them in between. Callers release only partitions
   * without a batch in flight; should one have one anyway, its `signal` is aborted (it can no longer commit).
   */
  private async release(parts: readonly OwnedPartition[]): Promise<void> {
    if (parts.length === 0) return;
    for (const part of parts) {
      part.revoking = true;
      if (this.inFlight?.part === part) this.inFlight.controller.abort(new Error('partition released'));
    }
    await this.db.query(
      `UPDATE bus_group_partitions AS g SET owner = NULL, lease_expires_at = NULL, updated_at = now()
       FROM unnest($3::text[], $4::integer[], $5::bigint[]) AS r(topic, partition, epoch)
       WHERE g.group_id = $1 AND g.owner = $2 AND g.topic = r.topic AND g.partition = r.partition
         AND g.epoch = r.epoch`,
      [
        this.groupId,
        this.consumerId,
        parts.map((p) => p.topic),
        parts.map((p) => p.partition),
        parts.map((p) => p.epoch),
      ],
    );
    for (const part of parts) {
      if (this.isOwned(part)) this.owned.delete(partKey(part.topic, part.partition));
      this.logger.debug(
        { groupId: this.groupId, topic: part.topic, partition: part.partition },
        'partition released',
      );
    }
  }

  private lose(part: OwnedPartition, reason: string): void {
    // Only this incarnation: the partition may have been acquired again (new epoch) since.
    if (this.isOwned(part)) this.owned.delete(partKey(part.topic, part.partition));
    if (this.inFlight?.part === part) this.inFlight.controller.abort(new Error(reason));
    this.logger.warn({ groupId: this.groupId, topic: part.topic, partition: part.partition }, reason);
  }

  // ── consuming ─────────────────────────────────────────────────────────────────────────────────────

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (this.pausedFlag) {
        await this.sleep(this.timings.pollIntervalMs);
        continue;
      }
      try {
        const ready = await this.readyPartitions();
        if (ready.length === 0) {
          await this.sleep(this.nextWakeIn());
          continue;
        }
        for (const part of ready) {
          if (this.stopping || this.pausedFlag) break;
          if (this.isServable(part)) await this.consumeOnce(part);
        }
      } catch (err) {
        this.logger.error(
          { err: describeError(err), groupId: this.groupId },
          'bus consumer loop failed; retrying',
        );
        await this.sleep(this.timings.retryBackoffMs);
      }
    }
  }

  private isServable(part: OwnedPartition): boolean {
    const t = now();
    return this.isOwned(part) && !part.revoking && part.leaseValidUntil > t && part.retryAt <= t;
  }

  /** Sleep until the earliest retry is due, but never longer than the poll interval. */
  private nextWakeIn(): number {
    let wait = this.timings.pollIntervalMs;
    const t = now();
    for (const part of this.owned.values()) {
      if (part.retryAt > t) wait = Math.min(wait, part.retryAt - t);
    }
    return Math.max(1, wait);
  }

  private async readyPartitions(): Promise<OwnedPartition[]> {
    const candidates = [...this.owned.values()].filter((p) => this.isServable(p));
    if (candidates.length === 0) return [];
    const { rows } = await this.db.query(
      `SELECT topic, partition, next_offset::text AS next_offset FROM bus_partitions WHERE topic = ANY($1::text[])`,
      [[...new Set(candidates.map((p) => p.topic))]],
    );
    const heads = new Map<string, number>();
    for (const raw of rows) {
      const row = headRow.parse(raw);
      heads.set(partKey(row.topic, row.partition), Number(row.next_offset));
    }
    return candidates.filter((p) => (heads.get(partKey(p.topic, p.partition)) ?? 0) > p.position);
  }

  private async fetch(part: OwnedPartition): Promise<ConsumedMessage[]> {
    const from = part.position;
    const cached = part.segment;
    if (cached !== null && from >= cached.base && from < cached.base + cached.records.length) {
      return this.slice(part, cached, from, []);
    }
    const { rows } = await this.db.query(
      `SELECT base_offset::text AS base, record_count,
              (extract(epoch FROM created_at) * 1000)::float8 AS ts,
              CASE WHEN base_offset = $5 THEN NULL ELSE payload END AS payload,
              CASE WHEN base_offset = $5 THEN NULL ELSE records END AS records, key_id,
              base_offset < (SELECT sealed_from FROM bus_partitions WHERE topic = $1 AND partition = $2) AS legacy
       FROM bus_segments
       WHERE topic = $1 AND partition = $2
         AND base_offset >= COALESCE(
           (SELECT max(base_offset) FROM bus_segments WHERE topic = $1 AND partition = $2 AND base_offset <= $3), 0)
         AND base_offset < $4
       ORDER BY bus_segments.base_offset`,
      [part.topic, part.partition, String(from), String(from + this.batchSize), String(cached?.base ?? -1)],
    );
    if (rows.length === 0) {
      // Nothing at or after `from` within reach: either nothing new, or `from` lies below what retention kept
      // (a group that never committed on this partition). Like Kafka's auto.offset.reset=earliest, skip ahead
      // to the earliest retained segment.
      const earliest = await this.db.query<{ base: string | null }>(
        'SELECT min(base_offset)::text AS base FROM bus_segments WHERE topic = $1 AND partition = $2',
        [part.topic, part.partition],
      );
      const base = earliest.rows[0]?.base;
      if (base !== null && base !== undefined && Number(base) > from) {
        this.logger.info(
          {
            groupId: this.groupId,
            topic: part.topic,
            partition: part.partition,
            from,
            earliest: Number(base),
          },
          'position is below the retained segments; starting at the earliest retained message',
        );
        part.position = Number(base);
        return this.fetch(part);
      }
      return [];
    }
    const out: ConsumedMessage[] = [];
    for (const raw of rows) {
      const row = segmentRow.parse(raw);
      const base = Number(row.base);
      let segment: NonNullable<OwnedPartition['segment']>;
      if (row.payload === null && row.records === null && cached !== null && cached.base === base) {
        segment = cached;
      } else {
        try {
          segment = { base, timestamp: row.ts, records: this.openSegment(part, base, row) };
        } catch (err) {
          // The partition halts right at the segment that does not open, not at the start of this fetch: the
          // messages before it go out now, and the next fetch starts at it and halts there.
          if (out.length > 0) return out;
          throw err;
        }
      }
      part.segment = segment;
      this.slice(part, segment, Math.max(from + out.length, base), out);
      if (out.length >= this.batchSize) break;
    }
    return out;
  }

  /**
   * The records of a fetched segment row, in either stored form: `payload` (v2, binary ciphertext, written
   * since bus/0004) or `records` (v1 JSON lines, text ciphertext, written before). Sealed segments open only
   * under their own (topic, partition, base offset); a plaintext one is accepted only as `records` below the
   * partition's `sealed_from` (written before sealing existed). Anything else throws `bus_unreadable`, which
   * halts the partition (see `consumeOnce`).
   */
  private openSegment(part: OwnedPartition, base: number, row: z.infer<typeof segmentRow>): StoredRecord[] {
    const context = segmentContext({ topic: part.topic, partition: part.partition, baseOffset: base });
    if (row.payload !== null) {
      if (row.key_id === null) throw unreadable('unsealed');
      const plaintext = openBinaryPayload(this.crypto, row.payload, context);
      try {
        return decodeSegment(plaintext, row.record_count);
      } catch (err) {
        throw unreadable('corrupt', err);
      }
    }
    const stored = row.records ?? '';
    let text: string;
    if (row.key_id !== null) {
      text = openPayload(this.crypto, stored, context);
    } else if (row.legacy) {
      text = stored;
    } else {
      throw unreadable('unsealed');
    }
    try {
      return decodeJsonLines(text, row.record_count);
    } catch (err) {
      throw unreadable('corrupt', err);
    }
  }

  private slice(
    part: OwnedPartition,
    segment: NonNullable<OwnedPartition['segment']>,
    from: number,
    out: ConsumedMessage[],
  ): ConsumedMessage[] {
    for (let offset = from; offset < segment.base + segment.records.length; offset += 1) {
      if (out.length >= this.batchSize) break;
      const record = segment.records[offset - segment.base] as StoredRecord;
      out.push({
        topic: part.topic,
        partition: part.partition,
        offset: String(offset),
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp: segment.timestamp,
      });
    }
    return out;
  }

  /**
   * Fetches and handles one batch of `part`. The partition counts as in flight from before the fetch, so a
   * concurrent heartbeat that reassigns it marks it revoking instead of releasing it under our feet.
   */
  private async consumeOnce(part: OwnedPartition): Promise<void> {
    const controller = new AbortController();
    const inFlight: InFlight = { part, lastProgress: now(), controller };
    this.inFlight = inFlight;
    try {
      let messages: ConsumedMessage[];
      try {
        messages = await this.fetch(part);
      } catch (err) {
        if (!(err instanceof BusError && err.code === 'bus_unreadable')) throw err;
        this.halt(part, err);
        return;
      }
      if (messages.length === 0 || controller.signal.aborted || !this.isOwned(part)) return;
      await this.process(part, messages, inFlight);
    } finally {
      this.inFlight = null;
    }
    if (part.revoking && this.isOwned(part)) await this.release([part]);
  }

  /**
   * A segment that does not open stops its partition right there: nothing is skipped or committed past it,
   * the other partitions keep flowing, and the fetch is retried with the handler-failure backoff — a key
   * that was missing (a pod without the new key during a rotation, a previous key dropped too early) can be
   * put back and the partition resumes. A tampered segment stays halted, loudly, until an operator acts.
   */
  private halt(part: OwnedPartition, err: BusError): void {
    part.consecutiveFailures += 1;
    const delay = Math.min(
      this.timings.maxRetryBackoffMs,
      this.timings.retryBackoffMs * 2 ** (part.consecutiveFailures - 1),
    );
    part.retryAt = now() + delay * (0.5 + Math.random() / 2);
    part.segment = null;
    const reason = unreadableReason(err);
    this.logger.error(
      {
        groupId: this.groupId,
        topic: part.topic,
        partition: part.partition,
        offset: part.position,
        reason,
        failures: part.consecutiveFailures,
      },
      'bus segment cannot be opened; the partition is halted there and retried',
    );
    this.onUnreadable?.({ topic: part.topic, partition: part.partition, reason });
  }

  private isOwned(part: OwnedPartition): boolean {
    return this.owned.get(partKey(part.topic, part.partition)) === part;
  }

  private async process(
    part: OwnedPartition,
    messages: readonly ConsumedMessage[],
    inFlight: InFlight,
  ): Promise<void> {
    const { controller } = inFlight;
    const batch: Batch = {
      topic: part.topic,
      partition: part.partition,
      messages,
      signal: controller.signal,
      // The periodic heartbeat renews the leases as long as the batch shows progress; this only records it.
      heartbeat: async () => {
        inFlight.lastProgress = now();
      },
    };
    try {
      await this.options.handler(batch);
    } catch (err) {
      part.consecutiveFailures += 1;
      const delay = Math.min(
        this.timings.maxRetryBackoffMs,
        this.timings.retryBackoffMs * 2 ** (part.consecutiveFailures - 1),
      );
      part.retryAt = now() + delay * (0.5 + Math.random() / 2);
      this.logger.error(
        {
          err: describeError(err),
          groupId: this.groupId,
          topic: part.topic,
          partition: part.partition,
          failures: part.consecutiveFailures,
        },
        'bus handler failed; the batch will be redelivered',
      );
      return;
    }
    if (this.abandoned) return;
    const last = messages[messages.length - 1];
    const next = last === undefined ? part.position : Number(last.offset) + 1;
    if (await this.commit(part, next)) {
      part.position = next;
      part.consecutiveFailures = 0;
    } else {
      this.lose(part, 'commit refused: the partition was taken over by another member');
    }
  }

  /** Writes the offset only if we still hold the lease with the same epoch; also renews the lease. */
  private async commit(part: OwnedPartition, next: number): Promise<boolean> {
    const sentAt = now();
    const { rowCount } = await this.db.query(
      `UPDATE bus_group_partitions
       SET committed_offset = $4, lease_expires_at = now() + $7::integer * interval '1 millisecond', updated_at = now()
       WHERE group_id = $1 AND topic = $2 AND partition = $3 AND owner = $5 AND epoch = $6`,
      [
        this.groupId,
        part.topic,
        part.partition,
        String(next),
        this.consumerId,
        part.epoch,
        this.timings.sessionTimeoutMs,
      ],
    );
    if (rowCount === 1) part.leaseValidUntil = sentAt + this.timings.sessionTimeoutMs;
    return rowCount === 1;
  }
}
