import { describe, expect, it } from 'vitest';
import { canonicalEntryJson, entryHash, GENESIS_HASH, verifyRows } from './chain';
import type { ChainedAuditEntry } from './entry';

const entry = {
  seq: 1,
  id: 'log_0123456789abcdef0123456789abcdef',
  action: 'integration.updated' as const,
  user_id: 'usr_abc123',
  user_email: 'admin@example.com',
  resource_type: 'integration' as const,
  resource_id: 'int_xyz789',
  changes: { enabled: { old: true, new: false }, name: { old: 'Ä', new: 1.5e-7 } },
  ip_address: '203.0.113.42',
  user_agent: 'Mozilla/5.0 ...',
  timestamp: '2026-02-25T14:30:00.000Z',
  org_id: null,
};

/** Written by hand (RFC 8785: keys sorted by code unit, ECMAScript numbers) and hashed with `sha256sum`. */
const CANONICAL =
  '{"action":"integration.updated","changes":{"enabled":{"new":false,"old":true},"name":{"new":1.5e-7,"old":"Ä"}},' +
  '"id":"log_0123456789abcdef0123456789abcdef","ip_address":"203.0.113.42","resource_id":"int_xyz789",' +
  '"resource_type":"integration","seq":1,"timestamp":"2026-02-25T14:30:00.000Z","user_agent":"Mozilla/5.0 ...",' +
  '"user_email":"admin@example.com","user_id":"usr_abc123"}';
const HASH = 'ac77c75a5a7a4e7cab0b22717378247f8b6d63ba3df08206fccde6c7147f3136';

function chainOf(count: number): ChainedAuditEntry[] {
  const rows: ChainedAuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const unhashed = { ...entry, seq, id: `log_${seq}` };
    const hash = entryHash(prev, unhashed);
    rows.push({ ...unhashed, prev_hash: prev, hash });
    prev = hash;
  }
  return rows;
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

const noLocate = async () => undefined;

describe('hash chain format (changing it breaks every stored chain)', () => {
  it('hashes SHA-256(prev_hash ‖ RFC 8785 canonical JSON of the entry with its seq)', () => {
    expect(canonicalEntryJson(entry)).toBe(CANONICAL);
    expect(entryHash(GENESIS_HASH, entry)).toBe(HASH);
  });

  it('does not depend on the order keys were written in', () => {
    const reordered = {
      timestamp: entry.timestamp,
      changes: { name: { new: 1.5e-7, old: 'Ä' }, enabled: { new: false, old: true } },
      user_agent: entry.user_agent,
      ip_address: entry.ip_address,
      resource_id: entry.resource_id,
      resource_type: entry.resource_type,
      user_email: entry.user_email,
      user_id: entry.user_id,
      action: entry.action,
      id: entry.id,
      org_id: null,
      seq: 1,
    };
    expect(entryHash(GENESIS_HASH, reordered)).toBe(HASH);
  });

  it('binds the seq and the previous hash', () => {
    expect(entryHash(GENESIS_HASH, { ...entry, seq: 2 })).not.toBe(HASH);
    expect(entryHash('1'.repeat(64), entry)).not.toBe(HASH);
  });

  it('hashes an org when the entry has one, and hashes an org-less entry as before orgs existed', () => {
    // Null: the canonical JSON above, unchanged, so chains recorded before entries carried an org still verify.
    expect(canonicalEntryJson({ ...entry, org_id: null })).toBe(CANONICAL);
    const withOrg = { ...entry, org_id: 'org_0123' };
    expect(canonicalEntryJson(withOrg)).toBe(
      CANONICAL.replace(',"resource_id"', ',"org_id":"org_0123","resource_id"'),
    );
    expect(entryHash(GENESIS_HASH, withOrg)).not.toBe(HASH);
    expect(entryHash(GENESIS_HASH, { ...withOrg, org_id: 'org_4567' })).not.toBe(
      entryHash(GENESIS_HASH, withOrg),
    );
  });
});

describe('verifyRows', () => {
  it('accepts an intact chain and an empty one', async () => {
    const rows = chainOf(4);
    const head = { seq: 4, hash: rows[3]?.hash ?? '' };
    expect(
      await verifyRows(iterate(rows), { start: { seq: 0, hash: GENESIS_HASH }, head, locate: noLocate }),
    ).toEqual({ ok: true, rows: 4, head });
    const empty = { seq: 0, hash: GENESIS_HASH };
    expect(await verifyRows(iterate([]), { start: empty, head: empty, locate: noLocate })).toEqual({
      ok: true,
      rows: 0,
      head: empty,
    });
  });

  it('continues from a purge checkpoint and checks the first remaining link against it', async () => {
    const rows = chainOf(6);
    const start = { seq: 2, hash: rows[1]?.hash ?? '' };
    const head = { seq: 6, hash: rows[5]?.hash ?? '' };
    const remaining = rows.slice(2);
    expect(await verifyRows(iterate(remaining), { start, head, locate: noLocate })).toMatchObject({
      ok: true,
      rows: 4,
    });
    expect(
      await verifyRows(iterate(remaining), {
        start: { seq: 2, hash: 'e'.repeat(64) },
        head,
        locate: noLocate,
      }),
    ).toMatchObject({ ok: false, firstBadSeq: 3, reason: 'checkpoint_mismatch' });
    expect(await verifyRows(iterate(rows.slice(1)), { start, head, locate: noLocate })).toMatchObject({
      ok: false,
      firstBadSeq: 2,
      reason: 'checkpoint_mismatch',
    });
  });

  it('requires the latest checkpoint to be recorded by an audit.purged entry when asked', async () => {
    const rows = chainOf(3);
    const start = { seq: 1, hash: rows[0]?.hash ?? '' };
    const head = { seq: 3, hash: rows[2]?.hash ?? '' };
    expect(
      await verifyRows(iterate(rows.slice(1)), { start, head, purgedThroughSeq: 1, locate: noLocate }),
    ).toMatchObject({ ok: false, firstBadSeq: 2, reason: 'checkpoint_unaudited' });
  });

  it('tells a moved row from a broken link by where its prev_hash points', async () => {
    const rows = chainOf(5);
    const head = { seq: 5, hash: rows[4]?.hash ?? '' };
    const [r1, r2, r3, r4, r5] = rows;
    if (!r1 || !r2 || !r3 || !r4 || !r5) throw new Error('chain too short');
    // r4's content at seq 3 and r3's at seq 4: the row at 3 points at r3's hash, which sits later.
    const swapped = [r1, r2, { ...r4, seq: 3 }, { ...r3, seq: 4 }, r5];
    const byHash = new Map(swapped.map((row) => [row.hash, row.seq]));
    expect(
      await verifyRows(iterate(swapped), {
        start: { seq: 0, hash: GENESIS_HASH },
        head,
        locate: async (hash) => byHash.get(hash),
      }),
    ).toEqual({ ok: false, firstBadSeq: 3, reason: 'reordered', rows: 2 });
  });
});
