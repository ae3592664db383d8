import { createHash, createHmac, randomBytes, randomFillSync } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { readVectorJson } from '@signal/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_SIZE,
  CobblestoneKey,
  deriveMessageKeys,
  HEADER_LENGTH,
  open,
  SALT_LENGTH,
  sealedLength,
  sealInto,
} from './cobblestone';
import { CryptoError, type CryptoErrorCode } from './errors';

interface ChunkedVector {
  tcId: number;
  comment: string;
  key: string;
  ctx: string;
  ct: string;
  aeadKey?: string;
  baseNonce?: string;
  msgLength?: number;
  msgSha512?: string;
  result: 'valid' | 'invalid';
  flags: string[];
}

const file = readVectorJson<{ numberOfTests: number; testGroups: { tests: ChunkedVector[] }[] }>(
  'crypto/c2sp_chunked_encryption_aes_256_gcm_test.json',
);
const vectors = file.testGroups.flatMap((group) => group.tests);
const hex = (value: string): Buffer => Buffer.from(value, 'hex');

/**
 * The code each invalid vector must fail with. A one-shot opener checks lengths first, so truncations and
 * trailing bytes that break the chunk framing are `malformed`; those that still frame as a valid (short)
 * final chunk can only be caught by its tag, so they are `authentication_failed`, as are modified and
 * reordered chunks. Header failures are the commitment check or the key size.
 */
const EXPECTED_CODE: Readonly<Record<number, CryptoErrorCode>> = {
  11: 'authentication_failed', // flipped ciphertext bit
  12: 'authentication_failed', // corrupted short chunk after a full one
  13: 'authentication_failed', // second chunk corrupted
  14: 'authentication_failed', // corrupted tag of the empty final chunk
  15: 'authentication_failed', // corrupted first chunk
  16: 'malformed', // tag removed: body shorter than a tag
  17: 'malformed', // payload shorter than a tag
  18: 'authentication_failed', // 20 trailing bytes frame as a 4-byte final chunk
  19: 'malformed', // 12 trailing bytes cannot be a final chunk
  20: 'malformed', // header only
  21: 'commitment_mismatch', // wrong commitment
  22: 'commitment_mismatch', // wrong key
  23: 'invalid_key', // 31-byte key
  24: 'invalid_key', // 33-byte key
  25: 'commitment_mismatch', // wrong context
  26: 'commitment_mismatch', // corrupted salt
  27: 'malformed', // empty
  28: 'malformed', // salt only
  29: 'malformed', // partial commitment
  30: 'malformed', // shorter than a salt
  31: 'malformed', // full chunk without the final short chunk
  32: 'authentication_failed', // second chunk truncated mid-body
  33: 'authentication_failed', // chunks swapped
  34: 'authentication_failed', // chunk duplicated
  35: 'authentication_failed', // extra encrypted chunk after the final one
};

function attempt(vector: ChunkedVector): { plaintext: Buffer } | { error: unknown } {
  try {
    const key = new CobblestoneKey(hex(vector.key));
    return { plaintext: open(key, hex(vector.ctx), inflateSync(hex(vector.ct)), 0, 64 * 1024 * 1024) };
  } catch (error) {
    return { error };
  }
}

describe('Cobblestone-256 against Wycheproof c2sp_chunked_encryption_aes_256_gcm_test.json', () => {
  it('runs all 35 vectors, and names an expected code for every invalid one', () => {
    expect(vectors).toHaveLength(35);
    expect(file.numberOfTests).toBe(35);
    const invalid = vectors.filter((v) => v.result === 'invalid').map((v) => v.tcId);
    expect(
      Object.keys(EXPECTED_CODE)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(invalid);
  });

  it('checks full SHA-512 digests of the plaintext (the file carries all 64 bytes)', () => {
    for (const vector of vectors.filter((v) => v.msgSha512 !== undefined)) {
      expect(vector.msgSha512).toMatch(/^[0-9a-f]{128}$/);
    }
  });

  it.each(vectors)('tcId $tcId: $comment ($result)', (vector) => {
    const outcome = attempt(vector);
    if (vector.result === 'valid') {
      if (!('plaintext' in outcome)) throw outcome.error;
      expect(outcome.plaintext).toHaveLength(vector.msgLength ?? -1);
      expect(createHash('sha512').update(outcome.plaintext).digest('hex')).toBe(vector.msgSha512);
    } else {
      expect('error' in outcome).toBe(true);
      const error = 'error' in outcome ? outcome.error : undefined;
      expect(error).toBeInstanceOf(CryptoError);
      expect((error as CryptoError).code).toBe(EXPECTED_CODE[vector.tcId]);
    }
  });

  it.each(vectors.filter((v) => v.aeadKey !== undefined))(
    'tcId $tcId: derives the listed AEAD key and base nonce',
    (vector) => {
      const sealed = inflateSync(hex(vector.ct));
      const derived = deriveMessageKeys(hex(vector.key), sealed.subarray(0, SALT_LENGTH), hex(vector.ctx));
      expect(derived.aeadKey.toString('hex')).toBe(vector.aeadKey);
      expect(derived.baseNonce.toString('hex')).toBe(vector.baseNonce);
      if (vector.result === 'valid') {
        expect(derived.commitment.equals(sealed.subarray(SALT_LENGTH, HEADER_LENGTH))).toBe(true);
      }
    },
  );
});

/** HKDF-Expand-SHA-512 (RFC 5869 §2.3) over createHmac: an independent reference for the derivation. */
function expandReference(prk: Buffer, info: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    previous = createHmac('sha512', prk)
      .update(Buffer.concat([previous, info, Buffer.from([i])]))
      .digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

describe('Cobblestone-256 key derivation', () => {
  const PREFIX = Buffer.from('c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\u0000', 'latin1');

  it('derives what HKDF-Expand over createHmac derives, for any salt and context, reusing one key', () => {
    const raw = randomBytes(32);
    const key = new CobblestoneKey(raw);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: SALT_LENGTH, maxLength: SALT_LENGTH }),
        // Lengths on both sides of the scratch's initial room, so it grows and old views are dropped.
        fc.oneof(fc.uint8Array({ maxLength: 160 }), fc.uint8Array({ minLength: 400, maxLength: 3000 })),
        fc.nat({ max: 7 }),
        (salt, context, offset) => {
          const source = Buffer.concat([randomBytes(offset), salt, randomBytes(3)]);
          key.derive(source, offset, context);
          const okm = expandReference(raw, Buffer.concat([PREFIX, salt, context]), 76);
          expect(key.aeadKey.equals(okm.subarray(0, 32))).toBe(true);
          expect(key.chunkNonce(0).equals(okm.subarray(32, 44))).toBe(true);
          expect(key.commitment.equals(okm.subarray(44, 76))).toBe(true);
          expect(key.commitmentMatches(Buffer.concat([Buffer.alloc(offset), okm.subarray(44)]), offset)).toBe(
            true,
          );
          const wrong = Buffer.from(okm.subarray(44));
          wrong[31] = (wrong[31] ?? 0) ^ 1;
          expect(key.commitmentMatches(wrong, 0)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('derives the same keys whatever contexts the key object derived for before', () => {
    // The scratch grows in steps; after a first step, a longer context may fit one inner buffer and not
    // the other. Every length across such a window, after a mid-size context made the scratch grow once.
    const raw = randomBytes(32);
    const salt = randomBytes(SALT_LENGTH);
    for (let length = 1100; length <= 1400; length++) {
      const key = new CobblestoneKey(raw);
      key.derive(salt, 0, randomBytes(600));
      const context = randomBytes(length);
      key.derive(salt, 0, context);
      const okm = expandReference(raw, Buffer.concat([PREFIX, salt, context]), 76);
      expect(key.commitment.equals(okm.subarray(44, 76)), `context of ${length} bytes`).toBe(true);
    }
  });

  it('counts chunk nonces up from the base nonce in the last 8 bytes, big-endian', () => {
    const key = new CobblestoneKey(randomBytes(32));
    key.derive(randomBytes(SALT_LENGTH), 0, Buffer.from('ctx'));
    const base = key.baseNonce();
    for (const index of [1, 2, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 38 - 1]) {
      const expected = Buffer.from(base);
      const counter = Buffer.alloc(8);
      counter.writeBigUInt64BE(BigInt(index));
      for (let i = 0; i < 8; i++) expected[4 + i] = (expected[4 + i] ?? 0) ^ (counter[i] ?? 0);
      expect(key.chunkNonce(index).toString('hex')).toBe(expected.toString('hex'));
    }
    expect(key.chunkNonce(0).equals(base)).toBe(true);
  });
});

describe('Cobblestone-256 sealing', () => {
  const sizes = fc.oneof(
    fc.constantFrom(0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 7),
    fc.integer({ min: 0, max: 40 * 1024 }),
  );

  it('round-trips any size, with a short (possibly empty) final chunk, under a reused key', () => {
    const key = new CobblestoneKey(randomBytes(32));
    fc.assert(
      fc.property(sizes, fc.uint8Array({ maxLength: 200 }), (size, context) => {
        const plaintext = randomBytes(size);
        const out = Buffer.alloc(sealedLength(size) + 5);
        const end = sealInto(key, context, plaintext, size, out, 5, randomFillSync);
        expect(end).toBe(out.length);
        const fullChunks = Math.floor(size / CHUNK_SIZE);
        expect(out.length - 5).toBe(HEADER_LENGTH + size + 16 * (fullChunks + 1));
        expect(open(key, context, out, 5, size).equals(plaintext)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('seals a string as its UTF-8 bytes, across chunk boundaries too', () => {
    const key = new CobblestoneKey(randomBytes(32));
    for (const text of ['', 'héllo wörld ✓', 'ü'.repeat(CHUNK_SIZE)]) {
      const length = Buffer.byteLength(text);
      const out = Buffer.alloc(sealedLength(length));
      sealInto(key, Buffer.alloc(0), text, length, out, 0, randomFillSync);
      expect(open(key, Buffer.alloc(0), out, 0, length).toString('utf8')).toBe(text);
    }
  });

  it('interoperates: a message sealed here opens with the derivation the vectors check', () => {
    const raw = randomBytes(32);
    const out = Buffer.alloc(sealedLength(3));
    sealInto(new CobblestoneKey(raw), Buffer.from('ctx'), Buffer.from('abc'), 3, out, 0, randomFillSync);
    const derived = deriveMessageKeys(raw, out.subarray(0, SALT_LENGTH), Buffer.from('ctx'));
    expect(derived.commitment.equals(out.subarray(SALT_LENGTH, HEADER_LENGTH))).toBe(true);
  });

  it('refuses to open more plaintext than the cap, before any decryption', () => {
    const key = new CobblestoneKey(randomBytes(32));
    const out = Buffer.alloc(sealedLength(100));
    sealInto(key, Buffer.alloc(0), randomBytes(100), 100, out, 0, randomFillSync);
    expect(() => open(key, Buffer.alloc(0), out, 0, 99)).toThrow(
      expect.objectContaining({ code: 'too_large' }),
    );
    expect(open(key, Buffer.alloc(0), out, 0, 100)).toHaveLength(100);
  });
});
