import { createHash } from 'node:crypto';
import type { ChainedAuditEntry } from './entry';
import { canonicalJson, type JsonValue } from './json';

/** `prev_hash` of the very first entry of a log. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * What the chain hashes: every field of the entry and its seq (not prev_hash, which is the prefix). `org_id`
 * is hashed only when set: entries recorded before entries carried an org (and deployment-wide ones) hash
 * exactly as they always did, so existing chains and exports keep verifying, while an org, once recorded, is
 * covered like every other field.
 */
export function canonicalEntryJson(entry: Omit<ChainedAuditEntry, 'prev_hash' | 'hash'>): string {
  const hashed: Record<string, JsonValue> = {
    seq: entry.seq,
    id: entry.id,
    action: entry.action,
    user_id: entry.user_id,
    user_email: entry.user_email,
    resource_type: entry.resource_type,
    resource_id: entry.resource_id,
    changes: entry.changes,
    ip_address: entry.ip_address,
    user_agent: entry.user_agent,
    timestamp: entry.timestamp,
  };
  if (entry.org_id !== null) hashed.org_id = entry.org_id;
  return canonicalJson(hashed);
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the entry incl. seq), lower-case hex. */
export function entryHash(prevHash: string, entry: Omit<ChainedAuditEntry, 'prev_hash' | 'hash'>): string {
  return createHash('sha256')
    .update(prevHash, 'utf8')
    .update(canonicalEntryJson(entry), 'utf8')
    .digest('hex');
}

/** The newest link of the chain: the last seq appended and its hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export type ChainFailureReason =
  /** A seq is missing: a row was deleted (firstBadSeq is the missing seq). */
  | 'gap'
  /** A row's content does not hash to its stored hash: the row was edited. */
  | 'hash_mismatch'
  /** A row's prev_hash is not the previous row's hash: a row was replaced or inserted with a recomputed hash. */
  | 'chain_broken'
  /** A row's prev_hash is the hash of a later row: rows were swapped or moved. */
  | 'reordered'
  /** A row does not parse (unknown action, malformed hash or timestamp). */
  | 'invalid_row'
  /** The rows end before or after the chain head, or the last row is not the head. */
  | 'head_mismatch'
  /** The oldest remaining row does not continue the latest purge checkpoint. */
  | 'checkpoint_mismatch'
  /** The latest purge checkpoint has no `audit.purged` entry in the chain recording it. */
  | 'checkpoint_unaudited'
  /** The entry at an externally noted seq does not carry the noted hash. */
  | 'anchor_mismatch';

export type ChainVerification =
  | { readonly ok: true; readonly rows: number; readonly head: ChainHead }
  | {
      readonly ok: false;
      /** The first seq at which the chain is not intact. */
      readonly firstBadSeq: number;
      readonly reason: ChainFailureReason;
      /** Rows verified intact before the failure. */
      readonly rows: number;
    };

export interface VerifyRowsOptions {
  /** Where the remaining chain starts: the latest purge checkpoint, or seq 0 with the genesis hash. */
  readonly start: ChainHead;
  /** The recorded chain head; the rows must end exactly there. */
  readonly head: ChainHead;
  /** Seq of a purge the latest `audit.purged` entry must record (the latest checkpoint's `through_seq`). */
  readonly purgedThroughSeq?: number | undefined;
  /** A head noted earlier outside the database (logs, a ticket); its entry must still carry that hash. */
  readonly anchor?: ChainHead | undefined;
  /** Finds the seq of the row whose stored hash is `hash`, to tell reordering from other breaks. */
  readonly locate: (hash: string) => Promise<number | undefined>;
}

/** A row that failed to parse, with the seq it claimed (or NaN when even that was unreadable). */
export interface InvalidRow {
  readonly invalid: true;
  readonly seq: number;
}

function fail(firstBadSeq: number, reason: ChainFailureReason, rows: number): ChainVerification {
  return { ok: false, firstBadSeq, reason, rows };
}

function recordsPurge(entry: ChainedAuditEntry, throughSeq: number): boolean {
  return entry.action === 'audit.purged' && entry.changes.through_seq?.new === throughSeq;
}

/**
 * Walks rows in seq order and reports the first place the chain is not intact. Pure apart from `locate`, so
 * the same check serves the database (`verifyChain`) and an exported NDJSON file.
 */
export async function verifyRows(
  rows: AsyncIterable<ChainedAuditEntry | InvalidRow>,
  options: VerifyRowsOptions,
): Promise<ChainVerification> {
  const { start, head, anchor } = options;
  let expectedSeq = start.seq + 1;
  let prevHash = start.hash;
  let verified = 0;
  let purgeAudited = options.purgedThroughSeq === undefined;
  let anchorSeen = anchor === undefined || (anchor.seq <= start.seq && anchor.seq !== start.seq);
  if (anchor !== undefined && anchor.seq === start.seq) {
    if (anchor.hash !== start.hash) return fail(anchor.seq, 'anchor_mismatch', 0);
    anchorSeen = true;
  }

  for await (const row of rows) {
    if ('invalid' in row) return fail(Number.isNaN(row.seq) ? expectedSeq : row.seq, 'invalid_row', verified);
    if (row.seq < expectedSeq) return fail(row.seq, 'checkpoint_mismatch', verified);
    if (row.seq > head.seq) return fail(row.seq, 'head_mismatch', verified);
    if (row.seq > expectedSeq) return fail(expectedSeq, 'gap', verified);
    if (row.prev_hash !== prevHash) {
      if (verified === 0 && start.seq > 0) return fail(row.seq, 'checkpoint_mismatch', verified);
      const holder = await options.locate(row.prev_hash);
      return fail(row.seq, holder !== undefined && holder > row.seq ? 'reordered' : 'chain_broken', verified);
    }
    if (entryHash(row.prev_hash, row) !== row.hash) return fail(row.seq, 'hash_mismatch', verified);
    if (anchor !== undefined && row.seq === anchor.seq) {
      if (row.hash !== anchor.hash) return fail(row.seq, 'anchor_mismatch', verified);
      anchorSeen = true;
    }
    if (options.purgedThroughSeq !== undefined && recordsPurge(row, options.purgedThroughSeq)) {
      purgeAudited = true;
    }
    verified++;
    expectedSeq = row.seq + 1;
    prevHash = row.hash;
  }

  if (expectedSeq - 1 < head.seq) return fail(expectedSeq, 'gap', verified);
  if (prevHash !== head.hash) return fail(head.seq, 'head_mismatch', verified);
  if (!purgeAudited) return fail(start.seq + 1, 'checkpoint_unaudited', verified);
  if (!anchorSeen && anchor !== undefined) return fail(anchor.seq, 'anchor_mismatch', verified);
  return { ok: true, rows: verified, head };
}
