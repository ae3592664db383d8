import type { AuditEntryInput } from '@signal/audit';
import { describe, expect, it } from 'vitest';
import { createIdentityErasure } from './erasure';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const ORG = 'org_1';

function fakes() {
  const recorded: AuditEntryInput[] = [];
  const shredded: string[][] = [];
  const erased: [string, string][] = [];
  return {
    recorded,
    shredded,
    erased,
    graph: {
      // Before the erasure the graph knows the person by anon-0; the erasure itself finds anon-1 too.
      subjectMatcher: async () => ({
        id: (kind: string, value: string) => kind === 'anonymous_id' && value === 'anon-0',
        erasureDigest: () => false,
      }),
      erase: async (org: string, subjectId: string) => {
        erased.push([org, subjectId]);
        return {
          profiles: 2,
          identifiers: 3,
          traits: 1,
          profileIds: ['prof_a', 'prof_b'],
          keySubjects: ['prof_a', 'prof_b', 'prof_merged'],
          isErased: {
            id: (kind: string, value: string) => kind === 'anonymous_id' && value === 'anon-1',
            erasureDigest: () => false,
          },
        };
      },
    },
    audit: {
      record: async (entry: AuditEntryInput) => {
        recorded.push(entry);
      },
    },
  };
}

describe('identity erasure with crypto-shredding', () => {
  it("destroys the erased profiles' DEKs and audits their ids only", async () => {
    const f = fakes();
    const erasure = createIdentityErasure({
      graph: f.graph,
      audit: f.audit,
      logger: quiet,
      shred: async (profileIds) => {
        f.shredded.push([...profileIds]);
        return ['0f'.repeat(16)];
      },
    });
    await erasure.eraseSubject(ORG, 'user@example.com', { user_id: 'usr_1' });
    // The caller's org goes to the graph with the subject: it erases only that org's person.
    expect(f.erased).toEqual([[ORG, 'user@example.com']]);
    // Merged-away profiles too: their DEKs sealed this person's data before the merge (backups hold it).
    expect(f.shredded).toEqual([['prof_a', 'prof_b', 'prof_merged']]);
    expect(f.recorded[0]?.changes).toMatchObject({
      destroyed_dek_ids: { old: ['0f'.repeat(16)], new: null },
    });
    expect(JSON.stringify(f.recorded)).not.toContain('user@example.com');
  });

  it('without shredding, records no DEK ids', async () => {
    const f = fakes();
    await createIdentityErasure({ graph: f.graph, audit: f.audit, logger: quiet }).eraseSubject(ORG, 'x', {
      user_id: null,
    });
    expect(f.recorded[0]?.changes).not.toHaveProperty('destroyed_dek_ids');
  });

  it("records identity.erased in the caller's org, with the actor", async () => {
    const f = fakes();
    await createIdentityErasure({ graph: f.graph, audit: f.audit, logger: quiet }).eraseSubject(ORG, 'x', {
      user_id: 'usr_1',
    });
    expect(f.recorded).toHaveLength(1);
    expect(f.recorded[0]).toMatchObject({ action: 'identity.erased', org_id: ORG, user_id: 'usr_1' });
  });

  it("purges the person's dead letters and retries before and after the erasure, and audits the counts", async () => {
    const f = fakes();
    const asked: string[] = [];
    await createIdentityErasure({
      graph: f.graph,
      audit: f.audit,
      logger: quiet,
      deliveries: {
        purge: async (org, isSubject) => {
          expect(org).toBe(ORG);
          asked.push(
            ['anon-0', 'anon-1', 'anon-2'].filter((id) => isSubject.id('anonymous_id', id)).join(','),
          );
          return { deadLetters: 2, retries: 1, unreadable: 0 };
        },
      },
    }).eraseSubject(ORG, 'x', { user_id: 'usr_1' });
    expect(asked).toEqual(['anon-0', 'anon-1']);
    expect(f.erased).toEqual([[ORG, 'x']]);
    expect(f.recorded[0]?.changes).toMatchObject({
      dead_letters: { old: 4, new: 0 },
      scheduled_retries: { old: 2, new: 0 },
    });
    expect(f.recorded[0]?.changes).not.toHaveProperty('unreadable_delivery_rows');
  });

  it('erases nothing when the first purge fails, so a retry still knows every id of the person', async () => {
    const f = fakes();
    const erasure = createIdentityErasure({
      graph: f.graph,
      audit: f.audit,
      logger: quiet,
      deliveries: {
        purge: async () => {
          throw new Error('database connection lost');
        },
      },
    });
    await expect(erasure.eraseSubject(ORG, 'x', { user_id: 'usr_1' })).rejects.toThrow(
      'database connection lost',
    );
    expect(f.erased).toEqual([]);
    expect(f.recorded).toEqual([]);
  });
});
