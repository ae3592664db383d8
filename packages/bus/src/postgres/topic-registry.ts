import type { Database } from '@signal/store';
import { z } from 'zod';
import { BusError } from '../errors';

/** Kafka's alphabet and length for topic names; the PostgreSQL bus keeps the same rule. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
export const MAX_PARTITIONS = 4096;

export function checkTopicName(name: string): void {
  if (!TOPIC_NAME.test(name)) {
    throw new BusError('bus_invalid_argument', 'topic names are 1-249 characters of A-Z a-z 0-9 . _ -');
  }
}

export function checkPartitionCount(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new BusError(
      'bus_invalid_argument',
      `a topic has 1-${MAX_PARTITIONS} partitions (got ${partitions})`,
    );
  }
}

const partitionsRow = z.object({ partitions: z.number().int().min(1).max(MAX_PARTITIONS) });

/**
 * Partition counts per topic, read once and cached: a topic's count never changes, so the cache cannot go
 * stale. Topics are created on first use when `autoCreate` is set (the embedded default: delivery topics
 * appear as integrations are added).
 */
export class TopicRegistry {
  private readonly known = new Map<string, number>();
  private readonly pending = new Map<string, Promise<number>>();

  constructor(
    private readonly db: Database,
    private readonly autoCreate: boolean,
    private readonly defaultPartitions: number,
  ) {}

  /** The topic's partition count, creating it with the default count when allowed. */
  partitions(name: string): Promise<number> {
    const cached = this.known.get(name);
    if (cached !== undefined) return Promise.resolve(cached);
    const inflight = this.pending.get(name);
    if (inflight !== undefined) return inflight;
    const lookup = this.load(name).finally(() => this.pending.delete(name));
    this.pending.set(name, lookup);
    return lookup;
  }

  private async load(name: string): Promise<number> {
    checkTopicName(name);
    const { rows } = await this.db.query('SELECT partitions FROM bus_topics WHERE name = $1', [name]);
    const row = rows[0];
    if (row !== undefined) return this.remember(name, partitionsRow.parse(row).partitions);
    if (!this.autoCreate) throw new BusError('bus_unknown_topic', `topic ${name} does not exist`);
    return this.ensure(name, this.defaultPartitions);
  }

  /** Creates the topic unless it exists; returns its (possibly pre-existing) partition count. */
  async ensure(name: string, partitions: number): Promise<number> {
    checkTopicName(name);
    checkPartitionCount(partitions);
    const count = await this.db.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO bus_topics (name, partitions) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
        [name, partitions],
      );
      const { rows } = await tx.query('SELECT partitions FROM bus_topics WHERE name = $1', [name]);
      const actual = partitionsRow.parse(rows[0]).partitions;
      await tx.query(
        `INSERT INTO bus_partitions (topic, partition)
         SELECT $1, p FROM generate_series(0, $2::integer - 1) AS p
         ON CONFLICT (topic, partition) DO NOTHING`,
        [name, actual],
      );
      return actual;
    });
    return this.remember(name, count);
  }

  private remember(name: string, partitions: number): number {
    this.known.set(name, partitions);
    return partitions;
  }
}
