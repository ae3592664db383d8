import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { controlPlaneMigrations } from '@signal/control-plane';
import { createCryptoService, createKeyring } from '@signal/crypto';
import type { DlqMessage, JsonValue } from '@signal/events';
import { type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseBackends } from '../../test/support/database-backends';
import { seedOrgIntegrations } from '../../test/support/org-integrations';
import { createDlqStore } from '../dlq/dlq-store';
import { deliveryWorkerMigrations } from '../migrations';
import { createRetryStore } from '../retry/retry-store';
import { createSubjectPurge, type SubjectMatcher } from './subject-purge';

/**
 * An erased person's events must not survive in the delivery worker's own tables: a DLQ replay of their dead
 * letter, or a scheduled retry, would deliver an erased person's event to the vendor after the erasure.
 */

const backends = await databaseBackends('dw_purge');

const crypto = createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) });

function event(org: string, anonymousId: string, userId: string | null): Record<string, JsonValue> {
  const now = new Date().toISOString();
  return {
    type: 'track',
    event: 'Order Completed',
    anonymousId,
    userId,
    messageId: randomUUID(),
    properties: { value: 9 },
    traits: {},
    context: { consent: {}, provenance: 'pipeline_key' },
    timestamp: now,
    receivedAt: now,
    org,
    pipelineId: 'pl_1',
  };
}

/** The processor's erasure digests of the ids an event arrived with, on messages whose ids it changed. */
type Digests = { anonymousId?: string; userId?: string };
const digestsOf = new Map<Record<string, JsonValue>, Digests>();

/** A delivery message (with the event's erasure digests, if it has some). */
function message(e: Record<string, JsonValue>, integrationId: string, attempt: number) {
  const digests = digestsOf.get(e);
  return {
    integrationId,
    event: e,
    attempt: { number: attempt },
    ...(digests ? { erasureDigests: digests } : {}),
  };
}

/** A delivery message's dead letter, or (no integration) a raw event's. */
function letter(e: Record<string, JsonValue>, integrationId: string | null): DlqMessage {
  return {
    error: 'vendor_rejected',
    details: 'refused',
    original: integrationId === null ? e : message(e, integrationId, 1),
    originalKey: String(e.anonymousId),
    topic: integrationId === null ? 'ns.raw-events' : `ns.delivery-${integrationId}`,
    ...(integrationId === null ? {} : { integrationId }),
    attempts: 1,
    failedAt: new Date().toISOString(),
  };
}

describe.each(backends)('erasing a person from dead letters and scheduled retries on $name', (backend) => {
  let db: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await backend.open());
    // The control plane's tables too: a row is an org's through its integration's pipeline.
    await migrate(db, [...controlPlaneMigrations, ...deliveryWorkerMigrations]);
    // wh_1 and wh_2 are org_a's integrations, wh_b org_b's.
    await seedOrgIntegrations(db, 'org_a', ['wh_1', 'wh_2']);
    await seedOrgIntegrations(db, 'org_b', ['wh_b']);
  });
  afterAll(async () => {
    await close?.();
  });

  it("deletes exactly the person's rows of that org, replayed letters too, and counts what it cannot open", async () => {
    const dlq = createDlqStore(db, crypto);
    const retries = createRetryStore(db, crypto);
    const [anonA, anonB, other] = [randomUUID(), randomUUID(), randomUUID()];
    const email = `jane-${randomBytes(3).toString('hex')}@example.com`;
    // The erasure digest of the person's user id, and of someone else's.
    const [emailDigest, otherDigest] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
    const isSubject: SubjectMatcher = {
      id: (kind, value) =>
        (kind === 'anonymous_id' && (value === anonA || value === anonB)) ||
        (kind === 'user_id' && value === email),
      erasureDigest: (kind, digest) => kind === 'user_id' && digest === emailDigest,
    };
    const hashed = (value: string) => createHash('sha256').update(value).digest('hex');

    // A server event whose user id a PII rule hashed: only its erasure digests name the person.
    const hashedTheirs = event('org_a', randomUUID(), hashed(email));
    digestsOf.set(hashedTheirs, { userId: emailDigest });
    const hashedOthers = event('org_a', randomUUID(), hashed('someone@example.com'));
    digestsOf.set(hashedOthers, { userId: otherDigest });
    const theirs = [
      event('org_a', anonA, null),
      event('org_a', anonB, email),
      event('org_a', other, email), // another device, known by the user id only
      hashedTheirs,
    ];
    const kept = [
      event('org_a', other, null), // someone else
      event('org_b', anonA, email), // the same ids in another org: another person
      hashedOthers,
    ];
    let offset = 0;
    const index = (letters: DlqMessage[]) =>
      dlq.index(letters.map((l) => ({ partition: 0, offset: String(++offset), letter: l })));
    await index([
      ...theirs.map((e) => letter(e, 'wh_1')),
      letter(theirs[0] as Record<string, JsonValue>, null),
      ...kept.map((e) => letter(e, 'wh_1')),
    ]);
    // A replayed letter still holds the event.
    const listed = await dlq.list({ includeReplayed: true, limit: 1000 });
    const replayedId = listed.find((e) => e.messageId === theirs[1]?.messageId)?.id;
    await dlq.markReplayed([replayedId ?? '']);
    // A letter sealed for another row (copied): cannot be opened, so cannot be told apart.
    const sealedElsewhere = event('org_a', anonA, null);
    const otherOrgsDamaged = event('org_b', randomUUID(), null);
    await index([letter(sealedElsewhere, 'wh_2'), letter(otherOrgsDamaged, 'wh_b')]);
    const copied = await db.query<{ id: string }>(
      `UPDATE delivery_dlq SET letter = (SELECT letter FROM delivery_dlq WHERE integration_id = 'wh_1' LIMIT 1)
        WHERE integration_id IN ('wh_2', 'wh_b') RETURNING id::text AS id`,
    );
    expect(copied.rows).toHaveLength(2);
    // An original kept as its text (it did not parse when it was dead-lettered) still names the person.
    const asText = event('org_a', anonB, null);
    await index([{ ...letter(asText, 'wh_1'), original: JSON.stringify(asText) }]);

    const retry = (e: Record<string, JsonValue>) => ({
      integrationId: 'wh_1',
      messageId: String(e.messageId),
      attempt: 2,
      dueAt: new Date(Date.now() + 60_000),
      key: String(e.anonymousId),
      message: JSON.stringify(message(e, 'wh_1', 2)),
      lastError: 'timeout',
    });
    await retries.schedule([...theirs, ...kept].map(retry));

    const counts = await createSubjectPurge(db, crypto).purge('org_a', isSubject);
    // Only org_a's damaged letter is counted: org_b's is not this erasure's business (nor its audit log's).
    expect(counts).toEqual({ deadLetters: 6, retries: 4, unreadable: 1 });

    const left = await dlq.list({ includeReplayed: true, limit: 1000 });
    expect(left.map((e) => e.messageId).sort()).toEqual(
      [...kept, sealedElsewhere, otherOrgsDamaged].map((e) => String(e.messageId)).sort(),
    );
    const scheduled = await db.query<{ message_id: string }>('SELECT message_id FROM delivery_retries');
    expect(scheduled.rows.map((r) => r.message_id).sort()).toEqual(
      kept.map((e) => String(e.messageId)).sort(),
    );

    // Idempotent: nothing more of theirs to find.
    expect(await createSubjectPurge(db, crypto).purge('org_a', isSubject)).toEqual({
      deadLetters: 0,
      retries: 0,
      unreadable: 1,
    });
  });
});
