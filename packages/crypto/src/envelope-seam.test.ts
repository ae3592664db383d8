import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CryptoAuditEvent } from './audit';
import type { DataClass, EncryptionContext } from './context';
import { createCryptoService } from './crypto-service';
import { CryptoError } from './errors';
import { KeyEntry, type Keyring, sameId } from './keyring';

/**
 * The seam an envelope keyring (in @signal/kms) plugs into, exercised with a minimal keyring typed against the
 * `Keyring` port: one single-class DEK per data class, and DEKs that are fetched on demand.
 */
function dekEntry(dataClass: DataClass | undefined): KeyEntry {
  const dek = randomBytes(32);
  return new KeyEntry({ id: randomBytes(16), dataClasses: [dataClass], dataKey: () => dek });
}

function fetchingKeyring(held: KeyEntry[], fetchable: KeyEntry[]): Keyring & { readonly fetches: number } {
  let fetches = 0;
  const general = held.find((entry) => entry.dataClasses.includes(undefined));
  if (general === undefined) throw new Error('test keyring needs a general DEK');
  return {
    provider: 'local',
    current: general,
    previous: undefined,
    currentKeyId: general.idHex,
    previousKeyId: undefined,
    dualKeyMode: false,
    get fetches() {
      return fetches;
    },
    find: (keyId) => held.find((entry) => sameId(entry.id, keyId)),
    sealingEntry(dataClass) {
      const entry = held.find((candidate) => candidate.dataClasses.includes(dataClass));
      if (entry === undefined) throw new CryptoError('invalid_key', 'no DEK');
      return entry;
    },
    isCurrent: (keyId) => held.some((entry) => sameId(entry.id, keyId)),
    sealingKeyIds: () => held.map((entry) => entry.idHex),
    async prepare(keyId) {
      fetches++;
      const entry = fetchable.find((candidate) => sameId(candidate.id, keyId));
      if (entry === undefined) throw new CryptoError('unknown_key_id', 'no such DEK');
      held.push(entry);
    },
  };
}

const credentials: EncryptionContext = {
  purpose: 'integration-credential',
  dataClass: 'credentials',
  table: 'integrations',
  column: 'secret',
  rowId: '1',
};

describe('envelope seam of the keyring', () => {
  it('seals each data class with its own DEK, whose id the ciphertext carries', () => {
    const general = dekEntry(undefined);
    const creds = dekEntry('credentials');
    const crypto = createCryptoService({ keyring: fetchingKeyring([general, creds], []) });
    expect(crypto.keyIdOf(crypto.seal('secret', credentials))).toBe(creds.idHex);
    expect(crypto.keyIdOf(crypto.seal('x', { purpose: 'p' }))).toBe(general.idHex);
  });

  it('refuses a ciphertext moved to another data class: its DEK holds no key for that class', () => {
    const creds = dekEntry('credentials');
    const events: CryptoAuditEvent[] = [];
    const crypto = createCryptoService({
      keyring: fetchingKeyring([dekEntry(undefined), creds, dekEntry('identity')], []),
      audit: { record: (event) => events.push(event) },
    });
    const sealed = crypto.seal('secret', credentials);
    expect(() => crypto.open(sealed, { ...credentials, dataClass: 'identity' })).toThrow(
      expect.objectContaining({ code: 'commitment_mismatch' }),
    );
    expect(events.at(-1)).toMatchObject({ action: 'crypto.decrypt_failed', keyId: creds.idHex });
  });

  it('openAsync fetches a DEK the keyring does not hold, once, and open alone does not', async () => {
    const writer = dekEntry('credentials');
    const sealed = createCryptoService({ keyring: fetchingKeyring([dekEntry(undefined), writer], []) }).seal(
      'secret',
      credentials,
    );
    const keyring = fetchingKeyring([dekEntry(undefined)], [writer]);
    const reader = createCryptoService({ keyring });
    expect(() => reader.open(sealed, credentials)).toThrow(
      expect.objectContaining({ code: 'unknown_key_id' }),
    );
    expect((await reader.openAsync(sealed, credentials)).toString()).toBe('secret');
    expect((await reader.openAsync(sealed, credentials)).toString()).toBe('secret');
    expect(keyring.fetches).toBe(1);
    expect(reader.needsReencryption(sealed)).toBe(false);
  });

  it('openAsync of a DEK that cannot be fetched fails closed and is audited', async () => {
    const events: CryptoAuditEvent[] = [];
    const lost = dekEntry('credentials');
    const sealed = createCryptoService({
      keyring: fetchingKeyring([dekEntry(undefined), lost], []),
    }).sealText('secret', credentials);
    const reader = createCryptoService({
      keyring: fetchingKeyring([dekEntry(undefined)], []),
      audit: { record: (event) => events.push(event) },
    });
    await expect(reader.openTextAsync(sealed, credentials)).rejects.toMatchObject({ code: 'unknown_key_id' });
    expect(events.at(-1)).toMatchObject({ action: 'crypto.decrypt_failed', code: 'unknown_key_id' });
  });

  it('a destroyed entry opens and seals nothing any more', () => {
    const creds = dekEntry('credentials');
    const crypto = createCryptoService({ keyring: fetchingKeyring([dekEntry(undefined), creds], []) });
    const sealed = crypto.seal('secret', credentials);
    creds.destroy();
    expect(() => crypto.open(sealed, credentials)).toThrow(
      expect.objectContaining({ code: 'key_destroyed' }),
    );
    // Zeroed pads would still seal consistently (under a publicly known key): sealing must refuse too.
    expect(() => crypto.seal('more', credentials)).toThrow(
      expect.objectContaining({ code: 'key_destroyed' }),
    );
  });
});
