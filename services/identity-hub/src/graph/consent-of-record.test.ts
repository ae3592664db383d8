import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryCache } from '@signal/cache';
import { normaliseConsent, withdrawnCategories } from '@signal/consent';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, migrate } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { afterAll, describe, expect, it } from 'vitest';
import { inMemoryPipelines, recordingLogger } from '../../test/support';
import { identityHubSettings } from '../config';
import { createIdentityHub } from '../identity-hub';
import { identityHubMigrations, requireIdentityMigrations } from '../migrations';
import { cacheSingleUseStore } from '../tokens/single-use';
import { createConsentOfRecord } from './consent-of-record';
import { describeConsentOfRecord } from './consent-of-record.suite';
import { pgliteTarget } from './db-targets';
import { createVisitorConsentStore } from './visitor-consent';

describeConsentOfRecord(pgliteTarget());

describe('a consent of record in the embedded database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'signal-consent-of-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is still there after the process reopens its data directory', async () => {
    const first = await createDatabase({ kind: 'pglite', dataDir: dir });
    await migrate(first, identityHubMigrations);
    await createConsentOfRecord({ db: first }).record('org_1', 'subject-1', { marketing: false }, Date.now());
    await first.close();

    const second = await createDatabase({ kind: 'pglite', dataDir: dir });
    try {
      const read = await createConsentOfRecord({ db: second }).get('org_1', 'subject-1');
      expect(withdrawnCategories(read)).toEqual(['marketing']);
    } finally {
      await second.close();
    }
  });
});

describe('a processor or worker started on a database migrated by an older release', () => {
  it('refuses to start, naming the missing migration, instead of failing every signed choice later', async () => {
    const none = await createDatabase({ kind: 'pglite' });
    const older = await createDatabase({ kind: 'pglite' });
    const current = await createDatabase({ kind: 'pglite' });
    try {
      await migrate(older, identityHubMigrations.slice(0, 3));
      await migrate(current, identityHubMigrations);
      // No identity tables at all: nothing to check (erasures and consents of record are off, and say so).
      expect(await requireIdentityMigrations(none, 'event-processor')).toBe('no_tables');
      await expect(requireIdentityMigrations(older, 'event-processor')).rejects.toThrow(
        /identity-hub\/0004_consent_of_record/,
      );
      expect(await requireIdentityMigrations(current, 'delivery-worker')).toBe('ready');
    } finally {
      await Promise.all([none.close(), older.close(), current.close()]);
    }
  });
});

describe('the identity hub', () => {
  it("purges expired consents of record and visitors' consent states when it starts (and hourly after)", async () => {
    const db = await createDatabase({ kind: 'pglite' });
    try {
      await migrate(db, identityHubMigrations);
      let clock = Date.parse('2026-01-01T00:00:00Z');
      const records = createConsentOfRecord({ db, now: () => clock, ttlMs: 60_000 });
      await records.record('org_1', 'granted-only', { analytics: true }, clock);
      await records.record('org_1', 'withdrew', { marketing: false }, clock);
      const visitors = createVisitorConsentStore({
        db,
        cache: createMemoryCache(),
        now: () => clock,
        ttlMs: 60_000,
      });
      await visitors.set(
        'org_1',
        'anon-old',
        normaliseConsent({ categories: { marketing: false } }, { observedAt: clock }),
      );
      clock += 120_000;
      await visitors.set(
        'org_1',
        'anon-new',
        normaliseConsent({ categories: { marketing: false } }, { observedAt: clock }),
      );
      const pipelines = inMemoryPipelines([]);
      const hub = createIdentityHub({
        settings: identityHubSettings({ namespace: 'purge' }),
        crypto: createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
        singleUse: cacheSingleUseStore(createMemoryCache()),
        pipelines,
        linkedDomains: pipelines,
        logger: recordingLogger(),
        metrics: createMetrics({ processMetrics: false }),
        consentOfRecord: records,
        visitorConsent: visitors,
      });
      await hub.start();
      try {
        const left = async () =>
          (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM identity_consent_of_record')).rows[0]
            ?.n;
        for (let i = 0; i < 50 && (await left()) !== 1; i += 1) await new Promise((r) => setTimeout(r, 20));
        // The grants lapsed; the withdrawal is kept 10 years.
        expect(await left()).toBe(1);
        expect(withdrawnCategories(await records.get('org_1', 'withdrew'))).toEqual(['marketing']);
        const visitorRows = async () =>
          (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM consent_visitor_states')).rows[0]?.n;
        for (let i = 0; i < 50 && (await visitorRows()) !== 1; i += 1)
          await new Promise((r) => setTimeout(r, 20));
        expect(await visitorRows()).toBe(1);
      } finally {
        await hub.stop();
      }
    } finally {
      await db.close();
    }
  });
});
