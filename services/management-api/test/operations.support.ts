import { randomBytes, randomUUID } from 'node:crypto';
import { createDlqStore, type DlqCrypto } from '@signal/delivery-worker';
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
 * Plants a dead letter of `integrationId`'s delivery topic and returns its id. With `crypto` (the API's), it is
 * indexed exactly as the worker's DLQ indexer does (from a `dlq-events` value), its personal data sealed.
 * Without, it is a row as indexed before `delivery-worker/0003` and moved by that migration: the letter's
 * personal data in plaintext JSON with no key id, which the API reads until the worker's start-up or the
 * re-encryption job seals it.
 */
export async function plantDeadLetter(
  db: Pick<Queryable, 'query'>,
  namespace: string,
  integrationId: string,
  options: {
    readonly failedAt?: Date;
    readonly event?: CanonicalEvent;
    readonly original?: unknown;
    readonly crypto?: DlqCrypto;
  } = {},
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
  offset += 1;
  const position = { partition: 0, offset: `${Date.now()}${String(offset).padStart(6, '0')}` };
  if (options.crypto === undefined) {
    // As migration 0003 moved an unescaped 0002 row: `{escaped, original, originalKey, details, lastResponse}`.
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO delivery_dlq (dlq_partition, dlq_offset, error, topic, integration_id, message_id, letter,
                                 attempts, failed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id::text AS id`,
      [
        position.partition,
        position.offset,
        letter.error,
        letter.topic,
        integrationId,
        options.original === undefined ? event.messageId : null,
        JSON.stringify({
          escaped: false,
          original: letter.original,
          originalKey: letter.originalKey,
          details: letter.details,
          lastResponse: letter.lastResponse,
        }),
        letter.attempts,
        letter.failedAt,
      ],
    );
    const id = rows[0]?.id;
    if (id === undefined) throw new Error('dead letter not planted');
    return id;
  }
  await createDlqStore(db, options.crypto).index([{ ...position, letter }]);
  const { rows } = await db.query<{ id: string }>(
    'SELECT id::text AS id FROM delivery_dlq WHERE dlq_partition = $1 AND dlq_offset = $2',
    [position.partition, position.offset],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('dead letter not indexed');
  return id;
}
