import { randomBytes } from 'node:crypto';
import { createCryptoService, type EncryptionContext } from '@signal/crypto';
import type { Database } from '@signal/store';
import { createMetrics } from '@signal/telemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { type EnvelopeKeyring, openEnvelopeKeyring } from '../src/envelope-keyring';
import { auditTrail, contextBlind, controlled, localProvider, migratedDb } from './fakes';

const CREDENTIAL: EncryptionContext = {
  purpose: 'integration-credential',
  dataClass: 'credentials',
  table: 'integrations',
  column: 'secret',
  rowId: '7',
};

const open: { keyrings: EnvelopeKeyring[]; dbs: Database[] } = { keyrings: [], dbs: [] };
afterEach(async () => {
  for (const keyring of open.keyrings.splice(0)) await keyring.close();
  for (const db of open.dbs.splice(0)) await db.close();
});

async function db(): Promise<Database> {
  const database = await migratedDb();
  open.dbs.push(database);
  return database;
}

async function keyringOn(
  database: Database,
  options: Omit<Parameters<typeof openEnvelopeKeyring>[0], 'db'>,
): Promise<EnvelopeKeyring> {
  const keyring = await openEnvelopeKeyring({ db: database, ...options });
  open.keyrings.push(keyring);
  return keyring;
}

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  return promise.then(
    () => ({ message: 'resolved' }),
    (error: { code?: string; message: string }) => error,
  );
}

describe('envelope keyring (local provider)', () => {
  it('creates one wrapped DEK per data class, seals with the class DEK, and survives a restart', async () => {
    const database = await db();
    const kek = randomBytes(32);
    const keyring = await keyringOn(database, { provider: localProvider(kek) });
    const rows = await database.query<{ data_class: string; state: string; kek_ref: string }>(
      'SELECT data_class, state, kek_ref FROM crypto_deks ORDER BY data_class',
    );
    expect(rows.rows.map((row) => `${row.data_class}:${row.state}`)).toEqual([
      'bus:active',
      'credentials:active',
      'general:active',
      'identity:active',
      'tokens:active',
    ]);
    const crypto = createCryptoService({ keyring });
    const sealed = crypto.sealText('api-secret', CREDENTIAL);
    expect(crypto.keyIdOf(sealed)).toBe(keyring.activeKeyIds().credentials);

    await keyring.close();
    const restarted = await keyringOn(database, { provider: localProvider(kek) });
    expect(restarted.activeKeyIds()).toEqual(keyring.activeKeyIds());
    expect(createCryptoService({ keyring: restarted }).openText(sealed, CREDENTIAL).toString()).toBe(
      'api-secret',
    );
  });

  it('refuses to start when the KMS is down, the KEK revoked or another KEK configured', async () => {
    const database = await db();
    const kek = randomBytes(32);
    await (await keyringOn(database, { provider: localProvider(kek) })).close();
    for (const mode of ['down', 'denied'] as const) {
      const provider = controlled(localProvider(kek));
      provider.mode = mode;
      const error = await rejection(openEnvelopeKeyring({ db: database, provider }));
      expect(error.code).toBe(mode === 'down' ? 'key_unavailable' : 'invalid_key');
    }
    const other = await rejection(openEnvelopeKeyring({ db: database, provider: localProvider() }));
    expect(other.code).toBe('invalid_key');
  });

  it('100 concurrent first decrypts under an unknown DEK make exactly one KMS call', async () => {
    const database = await db();
    const kek = randomBytes(32);
    const writer = await keyringOn(database, { provider: localProvider(kek) });
    const provider = controlled(localProvider(kek));
    const metrics = createMetrics({ processMetrics: false });
    const reader = await keyringOn(database, { provider, metrics });
    await writer.rotateDeks(); // the reader has not seen the new DEKs yet
    const sealed = createCryptoService({ keyring: writer }).seal('secret', CREDENTIAL);
    const crypto = createCryptoService({ keyring: reader });
    const before = provider.calls.unwrap;
    const opened = await Promise.all(Array.from({ length: 100 }, () => crypto.openAsync(sealed, CREDENTIAL)));
    expect(opened.every((plaintext) => plaintext.toString() === 'secret')).toBe(true);
    expect(provider.calls.unwrap - before).toBe(1);
    const text = await metrics.metrics();
    expect(text).toMatch(/signal_kms_requests_total\{provider="local",result="success"\} \d+/);
    expect(text).toMatch(/signal_dek_cache_lookups_total\{result="miss"\} 100\b/);
    expect(text).toMatch(/signal_kms_request_duration_seconds_count\{provider="local",operation="unwrap"\}/);
  });

  it('during a KMS outage decrypts go on from the cache within the grace window, then fail clearly', async () => {
    const database = await db();
    let now = 1_000_000;
    const provider = controlled(localProvider());
    const audit = auditTrail();
    const keyring = await keyringOn(database, {
      provider,
      audit,
      now: () => now,
      cache: { ttlMs: 60_000, refreshAheadMs: 10_000, staleGraceMs: 120_000 },
    });
    const crypto = createCryptoService({ keyring });
    const sealed = crypto.seal('card-token', CREDENTIAL);

    provider.mode = 'down';
    now += 61_000; // past the TTL: the DEK must be re-verified, and the KMS does not answer
    expect((await crypto.openAsync(sealed, CREDENTIAL)).toString()).toBe('card-token');
    expect(crypto.open(sealed, CREDENTIAL).toString()).toBe('card-token');
    expect(audit.events).toContainEqual(
      expect.objectContaining({ action: 'crypto.kms_error', code: 'kms_unavailable', staleServed: true }),
    );
    // Never encrypt with a key the KMS could not re-verify.
    expect(() => crypto.seal('new', CREDENTIAL)).toThrow(
      expect.objectContaining({ code: 'key_unavailable' }),
    );

    now += 120_000; // past TTL + grace
    const error = await rejection(crypto.openAsync(sealed, CREDENTIAL));
    expect(error.code).toBe('key_unavailable');
    expect(error.message).not.toContain('card-token');

    provider.mode = 'up';
    expect((await crypto.openAsync(sealed, CREDENTIAL)).toString()).toBe('card-token');
    expect(crypto.seal('new', CREDENTIAL).length).toBeGreaterThan(0);
  });

  it('a KMS that hangs is cut off by the call deadline', async () => {
    const database = await db();
    const kek = randomBytes(32);
    const writer = await keyringOn(database, { provider: localProvider(kek) });
    const provider = controlled(localProvider(kek));
    const reader = await keyringOn(database, { provider, kmsTimeoutMs: 50 });
    await writer.rotateDeks();
    const sealed = createCryptoService({ keyring: writer }).seal('secret', CREDENTIAL);
    provider.mode = 'hang';
    const error = await rejection(createCryptoService({ keyring: reader }).openAsync(sealed, CREDENTIAL));
    expect(error.code).toBe('key_unavailable');
    expect(error.message).toMatch(/within 50 ms/);
    // The health canary is cut off the same way (the provider ignores its abort signal).
    expect(await reader.canary()).toBe(false);
    provider.mode = 'up';
    expect(await reader.canary()).toBe(true);
  });

  it('a KMS answering with another key fails the DEK commitment, audited, nothing decrypted', async () => {
    const database = await db();
    const kek = randomBytes(32);
    const writer = await keyringOn(database, { provider: localProvider(kek) });
    const provider = controlled(localProvider(kek));
    const audit = auditTrail();
    const reader = await keyringOn(database, { provider, audit });
    await writer.rotateDeks();
    const sealed = createCryptoService({ keyring: writer }).seal('secret', CREDENTIAL);
    provider.mode = 'wrong-key';
    const error = await rejection(createCryptoService({ keyring: reader }).openAsync(sealed, CREDENTIAL));
    expect(error.code).toBe('commitment_mismatch');
    expect(audit.events).toContainEqual(
      expect.objectContaining({
        action: 'crypto.decrypt_failed',
        code: 'commitment_mismatch',
        table: 'crypto_deks',
        keyId: writer.activeKeyIds().credentials,
      }),
    );
  });

  it('a wrapped DEK copied to another data class is refused, even by a provider that binds no context', async () => {
    const database = await db();
    const inner = localProvider();
    const keyring = await keyringOn(database, { provider: contextBlind(inner) });
    await keyring.close();
    await database.query(
      `UPDATE crypto_deks SET wrapped = src.wrapped, commitment = src.commitment
       FROM (SELECT wrapped, commitment FROM crypto_deks WHERE data_class = 'credentials') src
       WHERE data_class = 'identity'`,
    );
    const audit = auditTrail();
    const error = await rejection(
      openEnvelopeKeyring({ db: database, provider: contextBlind(inner), audit }),
    );
    expect(error.code).toBe('commitment_mismatch');
    expect(audit.events).toContainEqual(
      expect.objectContaining({ action: 'crypto.decrypt_failed', dataClass: 'identity' }),
    );
  });

  it('KEK rotation re-wraps DEK rows only; DEK rotation leaves old data decrypt-only until re-encrypted', async () => {
    const database = await db();
    const keyA = randomBytes(32);
    const keyB = randomBytes(32);
    const first = await keyringOn(database, { provider: localProvider(keyA) });
    const sealed = createCryptoService({ keyring: first }).sealText('secret', CREDENTIAL);
    await first.close();

    const both = await keyringOn(database, { provider: localProvider(keyB, keyA) });
    expect(await both.rewrapDeks()).toEqual({ total: 5, rewrapped: 5, alreadyCurrent: 0, failed: 0 });
    expect(await both.rewrapDeks()).toMatchObject({ rewrapped: 0, alreadyCurrent: 5 });
    await both.close();

    const onlyB = await keyringOn(database, { provider: localProvider(keyB) });
    const crypto = createCryptoService({ keyring: onlyB });
    expect(crypto.openText(sealed, CREDENTIAL).toString()).toBe('secret');
    expect(crypto.needsReencryption(sealed)).toBe(false);

    const before = onlyB.activeKeyIds();
    const after = await onlyB.rotateDeks();
    expect(after.credentials).not.toBe(before.credentials);
    expect(crypto.needsReencryption(sealed)).toBe(true);
    expect(crypto.openText(sealed, CREDENTIAL).toString()).toBe('secret');
    expect(crypto.keyIdOf(crypto.sealText('x', CREDENTIAL))).toBe(after.credentials);
    expect(await onlyB.dekCounts()).toEqual({ active: 5, 'decrypt-only': 5 });
  });

  it('crypto-shredding: destroying a subject DEK erases its data here at once, elsewhere at the next sync, and for good', async () => {
    const database = await db();
    const kek = randomBytes(32);
    const now = 5_000_000;
    const options = {
      provider: localProvider(kek),
      shredding: true,
      now: () => now,
      cache: { ttlMs: 60_000 },
    };
    const eraser = await keyringOn(database, options);
    const other = await keyringOn(database, { ...options, provider: localProvider(kek) });
    const crypto = createCryptoService({ keyring: eraser });
    const elsewhere = createCryptoService({ keyring: other });
    const traits = (subject: string): EncryptionContext => ({
      purpose: 'identity-traits',
      dataClass: 'identity',
      table: 'identity_traits',
      column: 'traits',
      rowId: subject,
    });
    const alice = await crypto.sealTextAsync('{"email":"a@example.com"}', traits('prof_a'), {
      subject: 'prof_a',
    });
    const bob = await crypto.sealTextAsync('{"email":"b@example.com"}', traits('prof_b'), {
      subject: 'prof_b',
    });
    expect(crypto.keyIdOf(alice)).not.toBe(crypto.keyIdOf(bob));
    expect(crypto.keyIdOf(alice)).not.toBe(eraser.activeKeyIds().identity);
    expect((await elsewhere.openTextAsync(alice, traits('prof_a'))).toString()).toContain('a@example.com');

    const destroyed = await eraser.destroySubjects(['prof_a']);
    expect(destroyed).toEqual([crypto.keyIdOf(alice)]);
    expect((await rejection(crypto.openTextAsync(alice, traits('prof_a')))).code).toBe('key_destroyed');
    expect((await crypto.openTextAsync(bob, traits('prof_b'))).toString()).toContain('b@example.com');

    // The other process still holds the DEK in its cache (TTL 60 s): its next sync, well before the TTL,
    // sees the row destroyed and drops it.
    expect(other.holds(crypto.keyIdOf(alice))).toBe(true);
    await other.sync();
    expect(other.holds(crypto.keyIdOf(alice))).toBe(false);
    expect((await rejection(elsewhere.openTextAsync(alice, traits('prof_a')))).code).toBe('key_destroyed');
    expect((await elsewhere.openTextAsync(bob, traits('prof_b'))).toString()).toContain('b@example.com');

    const restarted = await keyringOn(database, { ...options, provider: localProvider(kek) });
    const afterRestart = createCryptoService({ keyring: restarted });
    expect((await rejection(afterRestart.openTextAsync(alice, traits('prof_a')))).code).toBe('key_destroyed');
    expect((await afterRestart.openTextAsync(bob, traits('prof_b'))).toString()).toContain('b@example.com');
    const row = await database.query<{ state: string; wrapped: unknown }>(
      'SELECT state, wrapped FROM crypto_deks WHERE id = $1',
      [destroyed[0]],
    );
    expect(row.rows).toEqual([{ state: 'destroyed', wrapped: null }]);
    // A new write for the erased subject gets a new DEK, not the destroyed one.
    const again = await afterRestart.sealTextAsync('{}', traits('prof_a'), { subject: 'prof_a' });
    expect(afterRestart.keyIdOf(again)).not.toBe(destroyed[0]);
  });

  it('crypto-shredding inside a transaction: sealText(…, {subject}) seals only with a DEK made ready beforehand', async () => {
    const database = await db();
    const keyring = await keyringOn(database, { provider: localProvider(randomBytes(32)), shredding: true });
    const crypto = createCryptoService({ keyring });
    const traits: EncryptionContext = {
      purpose: 'identity-traits',
      dataClass: 'identity',
      table: 'identity_traits',
      column: 'traits',
      rowId: 'prf_1',
    };
    // Not ready: refused (no silent fallback to the shared identity DEK, which erasure would not destroy).
    expect(keyring.subjectReady('prf_1')).toBe(false);
    expect(() => crypto.sealText('{}', traits, { subject: 'prf_1' })).toThrow(
      expect.objectContaining({ code: 'key_unavailable' }),
    );
    await keyring.prepareSubject('prf_1');
    expect(keyring.subjectReady('prf_1')).toBe(true);
    const sealed = crypto.sealText('{}', traits, { subject: 'prf_1' });
    const dek = await database.query<{ id: string }>("SELECT id FROM crypto_deks WHERE subject = 'prf_1'");
    expect(dek.rows).toEqual([{ id: crypto.keyIdOf(sealed) }]);
    expect(keyring.holds(crypto.keyIdOf(sealed))).toBe(true);
    // Preparing again reuses the one active DEK of the subject.
    await keyring.prepareSubject('prf_1');
    expect(crypto.keyIdOf(crypto.sealText('{}', traits, { subject: 'prf_1' }))).toBe(crypto.keyIdOf(sealed));
    // Classes without subject DEKs seal with their class DEK whatever the subject.
    expect(crypto.keyIdOf(crypto.sealText('x', CREDENTIAL, { subject: 'prf_1' }))).toBe(
      keyring.activeKeyIds().credentials,
    );

    await keyring.destroySubjects(['prf_1']);
    expect(keyring.subjectReady('prf_1')).toBe(false);
    expect(keyring.holds(crypto.keyIdOf(sealed))).toBe(false);
    expect(() => crypto.sealText('{}', traits, { subject: 'prf_1' })).toThrow(
      expect.objectContaining({ code: 'key_unavailable' }),
    );
  });
});
