import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors';
import { createKeyring, type KeyGeneration, localKeyGeneration } from './keyring';

describe('createKeyring', () => {
  it('fingerprints each key with a stable 16-byte id that differs per key and is not the key', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => {
          fc.pre(
            !a.every((x) => x === a[0]) &&
              !b.every((x) => x === b[0]) &&
              !Buffer.from(a).equals(Buffer.from(b)),
          );
          const first = createKeyring({ current: a });
          const again = createKeyring({ current: Buffer.from(a) });
          const other = createKeyring({ current: b });
          expect(first.currentKeyId).toMatch(/^[0-9a-f]{32}$/);
          expect(again.currentKeyId).toBe(first.currentKeyId);
          expect(other.currentKeyId).not.toBe(first.currentKeyId);
          expect(Buffer.from(a).toString('hex')).not.toContain(first.currentKeyId.slice(0, 16));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('reports dual-key mode and both ids when a previous key is configured', () => {
    const current = randomBytes(32);
    const previous = randomBytes(32);
    const single = createKeyring({ current });
    const dual = createKeyring({ current, previous });
    expect(single).toMatchObject({ provider: 'local', dualKeyMode: false, previousKeyId: undefined });
    expect(dual.dualKeyMode).toBe(true);
    expect(dual.currentKeyId).toBe(single.currentKeyId);
    expect(dual.previousKeyId).toBe(createKeyring({ current: previous }).currentKeyId);
    expect(dual.find(dual.current.id)).toBe(dual.current);
    expect(dual.previous === undefined ? undefined : dual.find(dual.previous.id)).toBe(dual.previous);
    expect(dual.find(randomBytes(16))).toBeUndefined();
  });

  it('refuses keys of the wrong length or placeholder keys, without echoing key bytes', () => {
    const bad = [
      Buffer.alloc(0),
      randomBytes(16),
      randomBytes(31),
      randomBytes(33),
      randomBytes(64),
      Buffer.alloc(32),
      Buffer.alloc(32, 0xff),
    ];
    for (const key of bad) {
      let error: unknown;
      try {
        createKeyring({ current: key });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CryptoError);
      expect((error as CryptoError).code).toBe('invalid_key');
      if (key.length > 0)
        expect((error as CryptoError).message).not.toContain(key.toString('hex').slice(0, 8));
    }
  });

  it('refuses a previous key equal to the current key (a common rotation slip)', () => {
    const key = randomBytes(32);
    expect(() => createKeyring({ current: key, previous: Buffer.from(key) })).toThrow(
      expect.objectContaining({ code: 'invalid_key' }),
    );
  });

  it('derives a distinct data key per data class, none equal to the raw key or the id', () => {
    const raw = randomBytes(32);
    const generation = localKeyGeneration(raw);
    const keys = [undefined, 'credentials', 'identity', 'tokens'] as const;
    const derived = keys.map((dataClass) => Buffer.from(generation.dataKey(dataClass)).toString('hex'));
    expect(new Set(derived).size).toBe(4);
    for (const key of derived) {
      expect(key).toHaveLength(64);
      expect(key).not.toBe(raw.toString('hex'));
    }
  });

  it('accepts a provider generation (the KMS seam) and checks its shape', () => {
    const dek = randomBytes(32);
    const provided: KeyGeneration = { id: randomBytes(16), dataKey: () => dek };
    const keyring = createKeyring({ current: provided, provider: 'aws-kms' });
    expect(keyring.provider).toBe('aws-kms');
    expect(keyring.currentKeyId).toBe(Buffer.from(provided.id).toString('hex'));
    expect(() => createKeyring({ current: { id: randomBytes(8), dataKey: () => dek } })).toThrow(
      expect.objectContaining({ code: 'invalid_key' }),
    );
    expect(() => createKeyring({ current: { id: randomBytes(16), dataKey: () => randomBytes(16) } })).toThrow(
      expect.objectContaining({ code: 'invalid_key' }),
    );
  });
});
