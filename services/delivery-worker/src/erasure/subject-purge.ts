import type { Queryable } from '@signal/store';
import { z } from 'zod';
import { createDlqStore, orgIntegrationIdsSql } from '../dlq/dlq-store';
import type { DlqCrypto } from '../dlq/encrypted-columns';
import { createRetryStore } from '../retry/retry-store';

type SubjectKind = 'anonymous_id' | 'user_id';

/** Whether an id (of the org being purged), or the erasure digest of one, is the erased person's. */
export interface SubjectMatcher {
  /** An anonymous id or user id as an event holds it. */
  id(kind: SubjectKind, value: string): boolean;
  /** A delivery message's `erasureDigests` entry (the ids the event arrived with, before a rule changed them). */
  erasureDigest(kind: SubjectKind, digest: string): boolean;
}

export interface SubjectPurgeCounts {
  /** Dead letters (`delivery_dlq`, replayed ones too) of the person, deleted. */
  readonly deadLetters: number;
  /** Scheduled retries (`delivery_retries`) of the person, deleted: they are never delivered. */
  readonly retries: number;
  /**
   * Rows of the org's integrations whose sealed part does not open here (a key this process does not hold, a
   * damaged ciphertext), or whose original is not an event: they cannot be told apart and are left as they
   * are. Non-zero means the erasure may be incomplete there. Rows of other orgs' integrations are never
   * counted (the count goes to this org's audit log).
   */
  readonly unreadable: number;
}

export interface SubjectPurge {
  /**
   * Deletes the delivery worker's copies of one person's events of `org`: their dead letters (a replay would
   * otherwise deliver an erased person's event to the vendor again) and their scheduled retries (delivered
   * later otherwise). A row is the person's when its event is of `org` and its anonymous id or user id
   * matches. Both tables are walked in id order and each row opened in memory (the ids are sealed, so there
   * is no index to ask); the cost grows with the backlog, which is bounded by the DLQ's retention. Every row
   * is looked at, not only the org's integrations': a letter of an integration deleted since, or of
   * `raw-events`, may hold the person's event too. Needs the control plane's `integrations` and `pipelines`
   * in the same database (to tell the org's rows), as where the Management API runs.
   */
  purge(org: string, isSubject: SubjectMatcher): Promise<SubjectPurgeCounts>;
}

const BATCH = 500;

/** The ids of an event (a raw event, or the `event` of a delivery message), as loosely as stored. */
const eventIds = z.object({
  org: z.string(),
  anonymousId: z.string().nullish(),
  userId: z.string().nullish(),
});
/** A delivery message's erasure digests of the ids its event arrived with, as loosely as stored. */
const carriedDigests = z.object({
  erasureDigests: z.object({ anonymousId: z.string().optional(), userId: z.string().optional() }),
});

interface StoredEvent {
  readonly ids: z.infer<typeof eventIds>;
  readonly digests?: z.infer<typeof carriedDigests>['erasureDigests'];
}

function eventOf(stored: unknown): StoredEvent | null {
  // An original that did not parse when it was dead-lettered is kept as its text: it may still be JSON.
  const original = typeof stored === 'string' ? parsedOrNull(stored) : stored;
  const direct = eventIds.safeParse(original);
  if (direct.success) return { ids: direct.data };
  if (original !== null && typeof original === 'object' && 'event' in original) {
    const nested = eventIds.safeParse(original.event);
    if (nested.success) {
      const digests = carriedDigests.safeParse(original);
      return digests.success
        ? { ids: nested.data, digests: digests.data.erasureDigests }
        : { ids: nested.data };
    }
  }
  return null;
}

/** Whether a row's original is the person's event; null when it holds no event to tell by. */
function isPersons(original: unknown, org: string, isSubject: SubjectMatcher): boolean | null {
  const stored = eventOf(original);
  if (stored === null) return null;
  const { ids, digests } = stored;
  if (ids.org !== org) return false;
  return (
    (typeof ids.anonymousId === 'string' && isSubject.id('anonymous_id', ids.anonymousId)) ||
    (typeof ids.userId === 'string' && isSubject.id('user_id', ids.userId)) ||
    (digests?.anonymousId !== undefined && isSubject.erasureDigest('anonymous_id', digests.anonymousId)) ||
    (digests?.userId !== undefined && isSubject.erasureDigest('user_id', digests.userId))
  );
}

function parsedOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function createSubjectPurge(db: Pick<Queryable, 'query'>, crypto: DlqCrypto): SubjectPurge {
  const dlq = createDlqStore(db, crypto);
  const retries = createRetryStore(db, crypto);
  return {
    async purge(org, isSubject) {
      const { rows: owned } = await db.query<{ id: string }>(orgIntegrationIdsSql('$1'), [org]);
      const ours = new Set(owned.map((row) => row.id));
      let deadLetters = 0;
      let retried = 0;
      let unreadable = 0;

      for (let after = '0'; ; ) {
        const rows = await dlq.scan(after, BATCH);
        const last = rows.at(-1);
        if (last === undefined) break;
        after = last.id;
        const doomed: string[] = [];
        for (const row of rows) {
          const persons = row.unreadable === null ? isPersons(row.original, org, isSubject) : null;
          if (persons === true) doomed.push(row.id);
          else if (persons === null && row.integration_id !== null && ours.has(row.integration_id))
            unreadable += 1;
        }
        deadLetters += await dlq.remove(doomed);
      }

      for (let after = ''; ; ) {
        const rows = await retries.scan(after, BATCH);
        const last = rows.at(-1);
        if (last === undefined) break;
        after = last.idText;
        const doomed: { integrationId: string; messageId: string }[] = [];
        for (const row of rows) {
          const persons = 'reason' in row ? null : isPersons(parsedOrNull(row.message), org, isSubject);
          if (persons === true) doomed.push(row);
          else if (persons === null && ours.has(row.integrationId)) unreadable += 1;
        }
        retried += await retries.remove(doomed);
      }
      return { deadLetters, retries: retried, unreadable };
    },
  };
}
