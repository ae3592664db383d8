import { randomBytes } from 'node:crypto';
import { createCryptoService, createKeyring } from '@signal/crypto';
import { createDatabase, type Database, migrate } from '@signal/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryWorkerMigrations } from '../migrations';
import { createRetryStore, type RetryEntry } from './retry-store';

let db: Database;
beforeAll(async () => {
  db = await createDatabase({ kind: 'pglite' });
  await migrate(db, deliveryWorkerMigrations);
});
afterAll(async () => {
  await db?.close();
});

function entry(messageId: string, key: string): RetryEntry {
  return {
    integrationId: 'wh-1',
    messageId,
    attempt: 2,
    dueAt: new Date(Date.now() - 1000),
    key,
    message: JSON.stringify({ integrationId: 'wh-1', event: { anonymousId: key } }),
    lastError: 'vendor_unavailable',
  };
}

describe('retry store', () => {
  it('keeps a partition key with U+0000 or an unpaired surrogate exactly (the anonymous id may hold them)', async () => {
    const store = createRetryStore(
      db,
      createCryptoService({ keyring: createKeyring({ current: randomBytes(32) }) }),
    );
    const keys = ['anon-plain', 'anon-\u0000-x', 'anon-\ud800-y', '"anon-quoted"'];
    await store.schedule(keys.map((key, i) => entry(`m-${i}`, key)));
    const { due: claimed } = await store.claimDue(10, 60_000);
    expect(new Map(claimed.map((c) => [c.messageId, c.key]))).toEqual(
      new Map(keys.map((key, i) => [`m-${i}`, key])),
    );
    expect(claimed.find((c) => c.messageId === 'm-1')?.message).toBe(entry('m-1', keys[1] ?? '').message);
  });
});
