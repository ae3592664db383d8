import type { AuditEntryInput } from '@signal/audit';
import type { IdentityHubLogger } from '../ports';
import type { ErasedSubjectMatcher, ErasureCounts, IdentityGraph } from './identity-graph';

/** Who asked for an erasure, as the Management API knows them (admin or owner, after authentication). */
export interface ErasureActor {
  readonly user_id: string | null;
  readonly user_email?: string | null;
  readonly ip_address?: string | null;
  readonly user_agent?: string | null;
}

export interface IdentityErasure {
  /**
   * Erases everything the identity graph holds about a visitor of `org`, named by a user id or an anonymous
   * id (`DELETE /v1/admin/identity/{id}`, `org` = the caller's org): the profile(s), every identifier,
   * traits and merged-away tombstones, and keeps an erasure record of that org (keyed digests of the
   * person's anonymous ids and user id) so their raw events received before now, still on the bus, are
   * dropped instead of rebuilding the profile. Records `identity.erased` (with the profile ids and counts,
   * never the subject id, which may be an email). Idempotent: erasing again finds nothing, answers zeros and
   * is recorded too. The same id in another org is another person: not found, not touched, and answered
   * exactly like an id nobody has (zeros), so the answer reveals nothing about other orgs.
   */
  eraseSubject(org: string, subjectId: string, actor: ErasureActor): Promise<ErasureCounts>;
}

export interface IdentityErasureDeps {
  /** `subjectMatcher` is only asked when `deliveries` is set. */
  readonly graph: Pick<IdentityGraph, 'erase' | 'subjectMatcher'>;
  /** The audit log (only `record` is used, and not its result). */
  readonly audit: { record(entry: AuditEntryInput): Promise<unknown> };
  readonly logger: IdentityHubLogger;
  /**
   * Crypto-shredding (envelope mode with ENCRYPTION_CRYPTO_SHREDDING): destroys the DEKs of these profiles,
   * so the graph's own ciphertexts of them (copies of the identity tables: backups, replicas) no longer open
   * anywhere. It does not reach the bus: raw events are sealed under the bus key, not a profile's DEK, and
   * stay readable until raw-events retention removes them; the graph's erasure record only keeps them from
   * rebuilding the profile (README, "Erasure and events still on the bus"). Returns the destroyed DEK ids,
   * which the audit entry records (ids only).
   */
  readonly shred?: (profileIds: readonly string[]) => Promise<readonly string[]>;
  /**
   * The delivery worker's copies of the person's events in this database (`createSubjectPurge`): their dead
   * letters and scheduled retries are deleted, so no DLQ replay or retry delivers an erased person's event
   * to a vendor afterwards. Counts go to the audit entry. Absent (the delivery worker's tables live
   * elsewhere): nothing outside the graph is touched.
   */
  readonly deliveries?: {
    purge(
      org: string,
      isSubject: ErasedSubjectMatcher,
    ): Promise<{ readonly deadLetters: number; readonly retries: number; readonly unreadable: number }>;
  };
}

/**
 * The erasure the Management API mounts behind admin auth. Suggested HTTP mapping: 200
 * `{"erased":{"profiles","identifiers","traits"}}`; `invalid_subject` → 400; `graph_unavailable` → 503.
 */
export function createIdentityErasure(deps: IdentityErasureDeps): IdentityErasure {
  const { graph, audit, logger, shred, deliveries } = deps;
  return {
    async eraseSubject(org, subjectId, actor) {
      // The person's dead letters and retries go first, while the graph still knows all their ids: if this
      // fails nothing is erased yet, and the operator's retry starts over with every id.
      const before =
        deliveries === undefined
          ? undefined
          : await deliveries.purge(org, await graph.subjectMatcher(org, subjectId));
      const { profileIds, keySubjects, isErased, ...counts } = await graph.erase(org, subjectId);
      // Destroyed after the rows are gone, merged-away profiles' DEKs too (backups hold what they sealed
      // before the merge). Hazard: if this throws, the rows are gone and a retry finds no profile to name, so
      // the error reaches the operator (no audit entry is written) rather than being retried away.
      const destroyedDeks = shred === undefined ? undefined : await shred(keySubjects);
      // Once more with the ids the erasure itself found: one linked, or a delivery dead-lettered, in between.
      // A failure here reaches the operator; a retry then only matches the id it names.
      const after = deliveries === undefined ? undefined : await deliveries.purge(org, isErased);
      const purged =
        before === undefined || after === undefined
          ? undefined
          : {
              deadLetters: before.deadLetters + after.deadLetters,
              retries: before.retries + after.retries,
              unreadable: Math.max(before.unreadable, after.unreadable),
            };
      // Deleted first, then recorded: if recording fails the caller retries, which is idempotent and records.
      await audit.record({
        action: 'identity.erased',
        org_id: org,
        user_id: actor.user_id,
        user_email: actor.user_email ?? null,
        ip_address: actor.ip_address ?? null,
        user_agent: actor.user_agent ?? null,
        resource_type: 'identity',
        resource_id: profileIds[0] ?? null,
        changes: {
          profiles: { old: counts.profiles, new: 0 },
          identifiers: { old: counts.identifiers, new: 0 },
          // `traits` alone is a field name the audit log masks as PII; this is a count of trait records.
          trait_records: { old: counts.traits, new: 0 },
          profile_ids: { old: [...profileIds], new: null },
          ...(destroyedDeks === undefined
            ? {}
            : { destroyed_dek_ids: { old: [...destroyedDeks], new: null } }),
          ...(purged === undefined
            ? {}
            : {
                dead_letters: { old: purged.deadLetters, new: 0 },
                scheduled_retries: { old: purged.retries, new: 0 },
                ...(purged.unreadable === 0
                  ? {}
                  : { unreadable_delivery_rows: { old: purged.unreadable, new: null } }),
              }),
        },
      });
      if (purged !== undefined && purged.unreadable > 0) {
        logger.warn(
          { unreadable: purged.unreadable },
          'identity erased, but some dead letters or scheduled retries could not be opened to check them',
        );
      }
      logger.info(
        {
          profiles: counts.profiles,
          identifiers: counts.identifiers,
          ...(purged === undefined ? {} : { deadLetters: purged.deadLetters, retries: purged.retries }),
        },
        'identity erased',
      );
      return counts;
    },
  };
}
