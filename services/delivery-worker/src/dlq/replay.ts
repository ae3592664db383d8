import { type Bus, fitsBus, type OutgoingMessage } from '@signal/bus';
import {
  canonicalEventSchema,
  type DeliveryMessage,
  deliveryMessageSchema,
  eventKey,
  REPLAY_HEADER,
  topics,
} from '@signal/events';
import type { Queryable } from '@signal/store';
import { createDlqStore, type DeadLetterFilter } from './dlq-store';
import type { DlqCrypto } from './encrypted-columns';

/** Header on a replayed message (defined with the topics, `@signal/events`). */
export { REPLAY_HEADER };

export interface ReplayDeps {
  readonly db: Pick<Queryable, 'query'>;
  readonly bus: Pick<Bus, 'publish' | 'maxMessageBytes'>;
  readonly namespace: string;
  /** Opens the sealed letters (`delivery_dlq.letter`): the deployment's crypto service. */
  readonly crypto: DlqCrypto;
}

export interface ReplayOptions extends Omit<DeadLetterFilter, 'includeReplayed' | 'before'> {
  /** Replay exactly these entries (else every pending entry matching the filter, oldest first). */
  readonly ids?: readonly string[];
}

export type SkipReason = 'not_replayable' | 'unreadable' | 'too_large';

export interface ReplayResult {
  readonly replayed: number;
  /**
   * Entries left as they were, with why: `not_replayable`, its original no longer parses for its topic;
   * `unreadable`, its sealed letter does not open here (a key this process does not hold, a ciphertext copied
   * from another row); `too_large`, it is over the bus's `maxMessageBytes` (a bus with a lower limit than the
   * one it was written on, e.g. after a move to Kafka): published, it would fail its whole topic's replay.
   */
  readonly skipped: readonly { readonly id: string; readonly reason: SkipReason }[];
}

/**
 * Re-publishes pending dead letters to the topic they failed on. A delivery message starts a fresh attempt
 * budget (attempt 1) and runs the worker's whole path again: the ledger (never re-sends an accepted event),
 * stage-2 consent against the latest state (a revocation since wins), the vendor's age guard. A raw event goes
 * back to the processor. Entries are marked replayed only after the publish is durable; a crash in between
 * replays them again, which the ledger and the processor's dedup absorb.
 */
export async function replayDlq(deps: ReplayDeps, options: ReplayOptions = {}): Promise<ReplayResult> {
  const store = createDlqStore(deps.db, deps.crypto);
  const rows = await store.forReplay({ ...options, limit: options.limit ?? 100 });
  const byTopic = new Map<string, { ids: string[]; messages: OutgoingMessage[] }>();
  const skipped: { id: string; reason: SkipReason }[] = [];
  const headers = { [REPLAY_HEADER]: '1' };
  for (const row of rows) {
    if (row.unreadable !== null) {
      skipped.push({ id: row.id, reason: 'unreadable' });
      continue;
    }
    const kind = topics.parse(deps.namespace, row.topic);
    let message: OutgoingMessage | null = null;
    if (kind?.kind === 'delivery') {
      const parsed = deliveryMessageSchema.safeParse(row.original);
      if (parsed.success && parsed.data.integrationId === kind.integrationId) {
        const fresh: DeliveryMessage = { ...parsed.data, attempt: { number: 1 } };
        message = { key: row.original_key ?? eventKey(fresh.event), value: JSON.stringify(fresh), headers };
      }
    } else if (kind?.kind === 'raw-events') {
      const parsed = canonicalEventSchema.safeParse(row.original);
      if (parsed.success) {
        message = {
          key: row.original_key ?? eventKey(parsed.data),
          value: JSON.stringify(parsed.data),
          headers,
        };
      }
    }
    if (message === null) {
      skipped.push({ id: row.id, reason: 'not_replayable' });
      continue;
    }
    if (!fitsBus(message, deps.bus.maxMessageBytes, 0)) {
      skipped.push({ id: row.id, reason: 'too_large' });
      continue;
    }
    let group = byTopic.get(row.topic);
    if (group === undefined) {
      group = { ids: [], messages: [] };
      byTopic.set(row.topic, group);
    }
    group.ids.push(row.id);
    group.messages.push(message);
  }
  let replayed = 0;
  for (const [topic, group] of byTopic) {
    await deps.bus.publish(topic, group.messages);
    await store.markReplayed(group.ids);
    replayed += group.ids.length;
  }
  return { replayed, skipped };
}
