import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sealedTextLength, sealedV1Length, V1_MIN_LENGTH } from './ciphertext';
import { HEADER_LENGTH } from './cobblestone';
import type { EncryptionContext } from './context';
import { type CryptoService, createCryptoService } from './crypto-service';
import { CryptoError, type CryptoErrorCode } from './errors';
import { createKeyring } from './keyring';

const CONTEXT: EncryptionContext = {
  purpose: 'integration-credential',
  dataClass: 'credentials',
  table: 'integration_credentials',
  column: 'secret',
  rowId: '4d1c7e2a-0a51-4f0b-8d3e-2f9b6c1a7e55',
};

function serviceWith(current: Buffer, previous?: Buffer, maxPlaintextBytes?: number): CryptoService {
  return createCryptoService({
    keyring: createKeyring({ current, previous }),
    ...(maxPlaintextBytes === undefined ? {} : { maxPlaintextBytes }),
  });
}

function codeOf(run: () => unknown): CryptoErrorCode | 'accepted' | 'other' {
  try {
    run();
    return 'accepted';
  } catch (error) {
    return error instanceof CryptoError ? error.code : 'other';
  }
}

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const service = serviceWith(keyA);

/** Sizes around the 16 KiB chunk boundary, and anything up to 40 KiB. */
const sizes = fc.oneof(
  fc.constantFrom(0, 1, 16383, 16384, 16385, 32767, 32768, 32769),
  fc.integer({ min: 0, max: 40 * 1024 }),
);

describe('v1 round trip', () => {
  it('opens what it seals, in binary and text form, for any size across chunk boundaries', () => {
    fc.assert(
      fc.property(sizes, fc.string({ maxLength: 40 }), (size, rowId) => {
        const context = { ...CONTEXT, rowId: `row-${rowId}` };
        const plaintext = randomBytes(size);
        const sealed = service.seal(plaintext, context);
        expect(sealed[0]).toBe(1);
        expect(sealed.subarray(1, 17).toString('hex')).toBe(service.keyring.currentKeyId);
        expect(sealed.length).toBe(17 + HEADER_LENGTH + size + 16 * (Math.floor(size / 16384) + 1));
        expect(service.open(sealed, context).equals(plaintext)).toBe(true);
        const text = service.sealText(plaintext, context);
        expect(text).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
        expect(service.openText(text, context).equals(plaintext)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('seals strings as UTF-8 and accepts any Uint8Array view', () => {
    const sealed = service.seal('pässwörd ✓', CONTEXT);
    expect(service.open(sealed, CONTEXT).toString('utf8')).toBe('pässwörd ✓');
    const padded = new Uint8Array(sealed.length + 8);
    padded.set(sealed, 4);
    expect(service.open(padded.subarray(4, 4 + sealed.length), CONTEXT).toString('utf8')).toBe('pässwörd ✓');
  });

  it('never produces the same ciphertext twice for the same input', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(service.seal('same', CONTEXT).toString('hex'));
    expect(seen.size).toBe(200);
  });
});

describe('v1 tamper resistance', () => {
  const sealedOf = (size: number): Buffer => service.seal(randomBytes(size), CONTEXT);

  it('refuses any single flipped bit, with the code of the part that was hit', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), fc.integer({ min: 0, max: 7 }), (size, where, bit) => {
        const sealed = sealedOf(size);
        const position = where % sealed.length;
        sealed[position] = (sealed[position] ?? 0) ^ (1 << bit);
        const expected: CryptoErrorCode =
          position === 0
            ? 'unknown_version'
            : position < 17
              ? 'unknown_key_id'
              : position < 17 + HEADER_LENGTH
                ? 'commitment_mismatch'
                : 'authentication_failed';
        expect(codeOf(() => service.open(sealed, CONTEXT))).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses every truncation', () => {
    fc.assert(
      fc.property(sizes, fc.nat(), (size, cut) => {
        const sealed = sealedOf(size);
        const length = cut % sealed.length;
        const code = codeOf(() => service.open(sealed.subarray(0, length), CONTEXT));
        if (length < V1_MIN_LENGTH) expect(code).toBe('malformed');
        else expect(['malformed', 'authentication_failed']).toContain(code);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses appended bytes', () => {
    fc.assert(
      fc.property(sizes, fc.uint8Array({ minLength: 1, maxLength: 40 }), (size, extra) => {
        const sealed = Buffer.concat([sealedOf(size), extra]);
        expect(['malformed', 'authentication_failed']).toContain(codeOf(() => service.open(sealed, CONTEXT)));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a ciphertext presented with any other context (copied row, column, table or purpose)', () => {
    const sealed = service.seal('secret', CONTEXT);
    const others: EncryptionContext[] = [
      { ...CONTEXT, purpose: 'identity-trait' },
      { ...CONTEXT, dataClass: 'identity' },
      { ...CONTEXT, table: 'identity_traits' },
      { ...CONTEXT, column: 'secret2' },
      { ...CONTEXT, rowId: '4d1c7e2a-0a51-4f0b-8d3e-2f9b6c1a7e56' },
      { ...CONTEXT, table: 'secret', column: 'integration_credentials' },
      { ...CONTEXT, extra: { aud: 'shop.example' } },
      { purpose: CONTEXT.purpose },
    ];
    for (const context of others)
      expect(codeOf(() => service.open(sealed, context))).toBe('commitment_mismatch');
    expect(service.open(sealed, { ...CONTEXT }).toString()).toBe('secret');
  });

  it('refuses random changes of context fields', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('purpose', 'table', 'column', 'rowId'),
        fc.string({ minLength: 1, maxLength: 20 }),
        (fieldName, value) => {
          fc.pre(CONTEXT[fieldName] !== value);
          const sealed = service.seal('x', CONTEXT);
          expect(codeOf(() => service.open(sealed, { ...CONTEXT, [fieldName]: value }))).toBe(
            'commitment_mismatch',
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses a ciphertext from another key: unknown id, or the commitment if the id is forged', () => {
    const other = serviceWith(keyB);
    const sealed = service.seal('secret', CONTEXT);
    expect(codeOf(() => other.open(sealed, CONTEXT))).toBe('unknown_key_id');
    const forged = Buffer.from(sealed);
    Buffer.from(other.keyring.currentKeyId, 'hex').copy(forged, 1);
    expect(codeOf(() => other.open(forged, CONTEXT))).toBe('commitment_mismatch');
  });

  it('refuses unknown versions and garbage', () => {
    const sealed = service.seal('secret', CONTEXT);
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    expect(codeOf(() => service.open(v2, CONTEXT))).toBe('unknown_version');
    expect(codeOf(() => service.open(Buffer.alloc(0), CONTEXT))).toBe('malformed');
    expect(codeOf(() => service.open(Buffer.from([1]), CONTEXT))).toBe('malformed');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(codeOf(() => service.open(bytes, CONTEXT))).not.toBe('accepted');
      }),
      { numRuns: 200 },
    );
  });
});

describe('v1 text form', () => {
  it('is "v1." and unpadded base64url of the binary form', () => {
    const text = service.sealText('secret', CONTEXT);
    const binary = Buffer.from(text.slice(3), 'base64url');
    expect(`v1.${binary.toString('base64url')}`).toBe(text);
    expect(service.open(binary, CONTEXT).toString()).toBe('secret');
  });

  it('has the length sealedTextLength predicts, for every size around the base64 and chunk boundaries', () => {
    const sizes = [0, 1, 2, 3, 4, 100, 16_383, 16_384, 16_385, 32_767, 32_768, 32_769, 100_000];
    for (const size of sizes) {
      const plaintext = randomBytes(size);
      expect(service.seal(plaintext, CONTEXT).length, `binary, ${size} bytes`).toBe(sealedV1Length(size));
      expect(service.sealText(plaintext, CONTEXT).length, `text, ${size} bytes`).toBe(sealedTextLength(size));
    }
    // A string is measured in UTF-8 bytes.
    const text = 'päßwörd ✓'.repeat(500);
    expect(service.sealText(text, CONTEXT).length).toBe(sealedTextLength(Buffer.byteLength(text)));
  });

  it('is parsed strictly', () => {
    // 89 + 1 bytes: 90 % 3 === 0, no tail; 89 + 2 = 91: tail of 2 chars whose last carries 4 unused bits.
    const text = service.sealText(randomBytes(2), CONTEXT);
    expect((text.length - 3) % 4).toBe(2);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(text.slice(-1));
    const nonCanonical = text.slice(0, -1) + alphabet.charAt(last | 1);
    expect(
      Buffer.from(nonCanonical.slice(3), 'base64url').equals(Buffer.from(text.slice(3), 'base64url')),
    ).toBe(true);

    const cases: [string, CryptoErrorCode][] = [
      [nonCanonical, 'malformed'],
      [`${text}==`, 'malformed'],
      [`${text}=`, 'malformed'],
      [` ${text}`, 'malformed'],
      [`${text}\n`, 'malformed'],
      [`V1.${text.slice(3)}`, 'malformed'],
      [text.replace('v1.', 'v1'), 'malformed'],
      // Always one '+' (standard base64, not base64url): a random text has no '-' or '_' to swap 2.4% of the time.
      [`v1.${text.slice(3, 10)}+${text.slice(11)}`, 'malformed'],
      // Canonical text of the ciphertext plus one zero byte: caught by the chunk framing and tag.
      [`${text}A`, 'authentication_failed'],
      ['v1.', 'malformed'],
      ['', 'malformed'],
      [`v2.${text.slice(3)}`, 'unknown_version'],
      [
        `v1.${Buffer.concat([Buffer.from([2]), Buffer.from(text.slice(3), 'base64url').subarray(1)]).toString('base64url')}`,
        'malformed',
      ],
    ];
    for (const [input, code] of cases)
      expect([input, codeOf(() => service.openText(input, CONTEXT))]).toEqual([input, code]);
    expect(service.openText(text, CONTEXT)).toHaveLength(2);
  });

  it('refuses arbitrary strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `v1.${s}`),
        ),
        (input) => {
          expect(codeOf(() => service.openText(input, CONTEXT))).not.toBe('accepted');
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('size cap', () => {
  it('refuses to seal or open above the cap, and bounds text input before decoding it', () => {
    const small = serviceWith(keyA, undefined, 1000);
    expect(codeOf(() => small.seal(randomBytes(1001), CONTEXT))).toBe('too_large');
    expect(small.open(small.seal(randomBytes(1000), CONTEXT), CONTEXT)).toHaveLength(1000);
    const big = service.seal(randomBytes(1001), CONTEXT);
    expect(codeOf(() => small.open(big, CONTEXT))).toBe('too_large');
    expect(codeOf(() => small.openText(`v1.${'A'.repeat(5000)}`, CONTEXT))).toBe('too_large');
  });

  it('defaults to 64 MiB', () => {
    expect(codeOf(() => service.seal(Buffer.alloc(64 * 1024 * 1024 + 1), CONTEXT))).toBe('too_large');
  });
});

describe('rotation (dual-key mode)', () => {
  const before = serviceWith(keyA);
  const during = serviceWith(keyB, keyA);
  const after = serviceWith(keyB);

  it('opens previous-key ciphertexts, flags them for re-encryption, and seals only with the new key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (plaintext) => {
        const old = before.seal(plaintext, CONTEXT);
        const oldText = before.sealText(plaintext, CONTEXT);
        expect(during.open(old, CONTEXT).equals(Buffer.from(plaintext))).toBe(true);
        expect(during.openText(oldText, CONTEXT).equals(Buffer.from(plaintext))).toBe(true);
        expect(during.needsReencryption(old)).toBe(true);
        expect(during.needsReencryption(oldText)).toBe(true);
        expect(during.keyIdOf(old)).toBe(before.keyring.currentKeyId);

        const reencrypted = during.seal(during.open(old, CONTEXT), CONTEXT);
        expect(during.needsReencryption(reencrypted)).toBe(false);
        expect(during.keyIdOf(reencrypted)).toBe(after.keyring.currentKeyId);
        expect(after.open(reencrypted, CONTEXT).equals(Buffer.from(plaintext))).toBe(true);
        expect(codeOf(() => after.open(old, CONTEXT))).toBe('unknown_key_id');
      }),
      { numRuns: 30 },
    );
  });

  it('fails needsReencryption loudly on input that is not a v1 ciphertext', () => {
    expect(codeOf(() => during.needsReencryption(Buffer.from([1, 2, 3])))).toBe('malformed');
    expect(codeOf(() => during.needsReencryption('v9.AAAA'))).toBe('unknown_version');
    expect(during.needsReencryption(serviceWith(randomBytes(32)).seal('x', CONTEXT))).toBe(true);
  });
});
