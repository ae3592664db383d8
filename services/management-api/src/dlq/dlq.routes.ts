import { decodeCursor, encodeCursor } from '@signal/control-plane';
import {
  createDlqStore,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DlqCrypto,
  type ReplayDeps,
  replayDlq,
} from '@signal/delivery-worker';
import { HttpError, sendJson } from '@signal/http';
import { z } from 'zod';
import type { AuditTrail } from '../http/audit-trail';
import { pageQuery, readBody } from '../http/request';
import type { RouteHandlers } from '../http/route-kit';

/**
 * What the DLQ routes need: the database holding `delivery_dlq`, the bus a replay publishes to, the namespace.
 * The letters' sealed parts are opened with the API's own crypto service (`createDlqRoutes`' `crypto`).
 */
export type DlqDeps = Omit<ReplayDeps, 'crypto'>;

const LIST_DEFAULT_LIMIT = 50;
const LIST_MAX_LIMIT = 100;
/** Entries per replay request (a larger backlog is replayed in several requests; `has_more` says so). */
const REPLAY_DEFAULT_LIMIT = 100;
const REPLAY_MAX_LIMIT = 1000;
const REPLAY_MAX_IDS = 100;
/** DLQ ids are `bigserial`s. */
const DLQ_ID = /^[1-9][0-9]{0,18}$/;

const isoInstant = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value))
  .refine((date) => !Number.isNaN(date.getTime()), 'must be an ISO 8601 date-time');
const integrationId = z.string().min(1).max(64);

const listQuerySchema = z.object({
  integration_id: integrationId.optional(),
  from: isoInstant.optional(),
  to: isoInstant.optional(),
  include_replayed: z.enum(['true', 'false']).optional(),
});

const replayBodySchema = z
  .strictObject({
    /** Exactly these entries. */
    ids: z.array(z.string().regex(DLQ_ID, 'must be a DLQ entry id')).min(1).max(REPLAY_MAX_IDS).optional(),
    /** Or every pending entry of one integration, optionally within [from, to). */
    integration_id: integrationId.optional(),
    from: isoInstant.optional(),
    to: isoInstant.optional(),
    limit: z.number().int().min(1).max(REPLAY_MAX_LIMIT).optional(),
  })
  .refine((b) => (b.ids === undefined) !== (b.integration_id === undefined), {
    message: 'give either ids or integration_id (with an optional from/to range), not both',
    path: ['ids'],
  })
  .refine(
    (b) => b.ids === undefined || (b.from === undefined && b.to === undefined && b.limit === undefined),
    {
      message: 'from, to and limit apply to an integration_id replay, not to ids',
      path: ['ids'],
    },
  )
  .refine((b) => b.from === undefined || b.to === undefined || b.from < b.to, {
    message: 'from must be before to',
    path: ['from'],
  });

function queryObject(query: URLSearchParams, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = query.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

function validationMessage(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length === 0 ? 'request' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

/** The API shape of a dead letter: metadata and the original with personal data masked (never unmasked). */
function entryJson(entry: DeadLetterEntry) {
  return {
    id: entry.id,
    error: entry.error,
    details: entry.details,
    topic: entry.topic,
    integration_id: entry.integrationId,
    message_id: entry.messageId,
    attempts: entry.attempts,
    last_response: entry.lastResponse,
    failed_at: entry.failedAt.toISOString(),
    replayed_at: entry.replayedAt === null ? null : entry.replayedAt.toISOString(),
    replay_count: entry.replayCount,
    original: entry.original,
  };
}

/**
 * `GET /dlq` (newest first, filters, keyset cursor), `GET /dlq/{id}` and `POST /dlq/replay`, each over the
 * caller's org's letters only (those of its integrations; ids are sequential, so guessable). Dead letters are
 * only ever shown masked (`maskPersonalData`); a replay re-publishes the stored original to the topic it
 * failed on, where the worker's ledger and stage-2 consent apply again. The audit entry of a replay holds
 * counts and the filter, never event data.
 */
export function createDlqRoutes(deps: {
  readonly dlq: DlqDeps | undefined;
  /** Opens the sealed part of each letter (`delivery_dlq.letter`). */
  readonly crypto: DlqCrypto;
  readonly trail: AuditTrail;
}): Pick<RouteHandlers, 'dlq.list' | 'dlq.get' | 'dlq.replay'> {
  const { trail, crypto } = deps;
  const wired =
    deps.dlq === undefined
      ? undefined
      : { deps: { ...deps.dlq, crypto }, store: createDlqStore(deps.dlq.db, crypto) };

  /** Optional dependency: a process without the DLQ tables and the bus answers 503, saying why. */
  function dlq() {
    if (wired === undefined) {
      throw new HttpError(
        'unavailable',
        'the dead-letter queue is not available in this process: it needs the delivery worker tables and the bus',
      );
    }
    return wired;
  }

  return {
    async 'dlq.list'({ res, query, principal }) {
      const { store } = dlq();
      const page = pageQuery(query);
      const limit = page.limit ?? LIST_DEFAULT_LIMIT;
      if (limit < 1 || limit > LIST_MAX_LIMIT) {
        throw new HttpError('bad_request', `limit must be a whole number from 1 to ${LIST_MAX_LIMIT}`);
      }
      const parsed = listQuerySchema.safeParse(
        queryObject(query, ['integration_id', 'from', 'to', 'include_replayed']),
      );
      if (!parsed.success) throw new HttpError('validation_failed', validationMessage(parsed.error));
      let before: string | undefined;
      if (page.cursor !== null && page.cursor !== '') {
        before = decodeCursor(page.cursor);
        if (!DLQ_ID.test(before))
          throw new HttpError('bad_request', 'cursor is not a cursor this API issued');
      }
      const filter: DeadLetterFilter = {
        orgId: principal.orgId,
        ...(parsed.data.integration_id === undefined ? {} : { integrationId: parsed.data.integration_id }),
        ...(parsed.data.from === undefined ? {} : { from: parsed.data.from }),
        ...(parsed.data.to === undefined ? {} : { to: parsed.data.to }),
        ...(before === undefined ? {} : { before }),
        includeReplayed: parsed.data.include_replayed === 'true',
        limit: limit + 1,
      };
      const rows = await store.list(filter);
      const hasMore = rows.length > limit;
      const data = hasMore ? rows.slice(0, limit) : rows;
      const last = data.at(-1);
      sendJson(res, 200, {
        data: data.map(entryJson),
        next_cursor: hasMore && last !== undefined ? encodeCursor(last.id) : null,
        has_more: hasMore,
      });
    },

    async 'dlq.get'({ res, params, principal }) {
      const { store } = dlq();
      const id = params.id ?? '';
      // Another org's letter answers exactly like an id nobody has.
      const entry = DLQ_ID.test(id) ? await store.get(id, { orgId: principal.orgId }) : null;
      if (entry === null) throw new HttpError('not_found', 'dead letter not found');
      sendJson(res, 200, entryJson(entry));
    },

    async 'dlq.replay'({ req, res, info, principal }) {
      const { deps: replayDeps, store } = dlq();
      const raw = await readBody(req, z.unknown());
      const parsed = replayBodySchema.safeParse(raw);
      if (!parsed.success) throw new HttpError('validation_failed', validationMessage(parsed.error));
      const body = parsed.data;
      const filter: DeadLetterFilter = {
        orgId: principal.orgId,
        ...(body.ids === undefined
          ? {
              ...(body.integration_id === undefined ? {} : { integrationId: body.integration_id }),
              ...(body.from === undefined ? {} : { from: body.from }),
              ...(body.to === undefined ? {} : { to: body.to }),
            }
          : {}),
      };
      const limit = body.ids?.length ?? body.limit ?? REPLAY_DEFAULT_LIMIT;
      const result = await replayDlq(replayDeps, {
        ...filter,
        ...(body.ids === undefined ? {} : { ids: body.ids }),
        limit,
      });
      // Ids that matched no pending entry of the caller's org: unknown, another org's (answered alike), or
      // replayed already (a replay happens once per request).
      const notPending =
        body.ids === undefined ? undefined : body.ids.length - result.replayed - result.skipped.length;
      // Entries skipped as not replayable stay pending; more is left when anything else still matches.
      const hasMore =
        body.ids === undefined &&
        (await store.list({ ...filter, limit: result.skipped.length + 1 })).length > result.skipped.length;
      await trail.record({
        action: 'dlq.replayed',
        principal,
        info,
        resourceType: 'dlq',
        resourceId: body.integration_id ?? null,
        changes: {
          replayed: { old: null, new: result.replayed },
          skipped: { old: null, new: result.skipped.length },
          selection: {
            old: null,
            new:
              body.ids === undefined
                ? {
                    integration_id: body.integration_id ?? null,
                    from: body.from?.toISOString() ?? null,
                    to: body.to?.toISOString() ?? null,
                    limit,
                  }
                : { ids: body.ids.length },
          },
        },
      });
      sendJson(res, 200, {
        replayed: result.replayed,
        skipped: result.skipped,
        ...(notPending === undefined ? {} : { not_pending: notPending }),
        has_more: hasMore,
      });
    },
  };
}
