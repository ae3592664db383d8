import { randomBytes, randomUUID } from 'node:crypto';
import { createDlqStore } from '@signal/delivery-worker';
import { type CanonicalEvent, canonicalEventSchema, type DlqMessage, topics } from '@signal/events';
import type { Queryable } from '@signal/store';

let offset = 0;

/** A canonical event as the gateway puts it on `raw-events` (identify with PII in traits and user id). */
export function sampleEvent(fields: {
  readonly anonymousId?: string;
  /** null: an anonymous visitor (no user id). */
  readonly userId?: string | null;
  readonly traits?: Record<string, string>;
}): CanonicalEvent {
  const userId =
    fields.userId === null ? {} : { userId: fields.userId ?? `user-${randomBytes(4).toString('hex')}` };
  const now = new Date().toISOString();
  return canonicalEventSchema.parse({
    type: 'identify',
    anonymousId: fields.anonymousId ?? randomUUID(),
    ...userId,
    messageId: `msg-${randomBytes(8).toString('hex')}`,
    properties: {},
    traits: fields.traits ?? { email: 'jane.doe@example.com', plan: 'pro' },
    context: { consent: {}, provenance: 'pipeline_key', ip: '203.0.113.7' },
    timestamp: now,
    receivedAt: now,
    org: 'org_fixture',
    pipelineId: 'pl_fixture',
  });
}

/**
 * Indexes a dead letter of `integrationId`'s delivery topic exactly as the worker's DLQ indexer does (from a
 * `dlq-events` value), and returns its id.
 */
export async function plantDeadLetter(
  db: Pick<Queryable, 'query'>,
  namespace: string,
  integrationId: string,
  options: { readonly failedAt?: Date; readonly event?: CanonicalEvent; readonly original?: unknown } = {},
): Promise<string> {
  const event = options.event ?? sampleEvent({});
  const letter: DlqMessage = {
    error: 'vendor_rejected',
    details: 'the vendor refused the event (HTTP 400)',
    original: (options.original ?? {
      integrationId,
      event,
      attempt: { number: 5, lastError: 'vendor_4xx' },
    }) as DlqMessage['original'],
    originalKey: event.anonymousId ?? 'key',
    topic: topics.delivery(namespace, integrationId).name,
    integrationId,
    attempts: 5,
    lastResponse: { status: 400, body: '{"error":"invalid parameter"}' },
    failedAt: (options.failedAt ?? new Date()).toISOString(),
  };
  const store = createDlqStore(db);
  offset += 1;
  const position = { partition: 0, offset: `${Date.now()}${String(offset).padStart(6, '0')}` };
  await store.index([{ ...position, letter }]);
  const { rows } = await db.query<{ id: string }>(
    'SELECT id::text AS id FROM delivery_dlq WHERE dlq_partition = $1 AND dlq_offset = $2',
    [position.partition, position.offset],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('dead letter not indexed');
  return id;
}
