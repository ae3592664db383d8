import { createHmac, hkdfSync } from 'node:crypto';
import { readVectorJson } from '@signal/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HashName, HmacKey, hkdf, hkdfExpand, hkdfExtract } from './hkdf';

interface Rfc5869Case {
  name: string;
  hash: 'sha1' | 'sha256';
  ikm: string;
  salt: string | null;
  info: string;
  L: number;
  prk: string;
  okm: string;
}

interface WycheproofHkdf {
  numberOfTests: number;
  testGroups: {
    tests: {
      tcId: number;
      ikm: string;
      salt: string;
      info: string;
      size: number;
      okm: string;
      result: 'valid' | 'invalid';
      flags: string[];
    }[];
  }[];
}

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

describe('HKDF against RFC 5869 Appendix A', () => {
  const cases = readVectorJson<{ testCases: Rfc5869Case[] }>('crypto/rfc5869_test_vectors.json').testCases;

  it('has all seven cases', () => {
    expect(cases).toHaveLength(7);
  });

  it.each(cases)('$name: Extract gives the PRK, Expand of the PRK gives the OKM', (vector) => {
    const salt = vector.salt === null ? Buffer.alloc(0) : hex(vector.salt);
    expect(hkdfExtract(vector.hash, salt, hex(vector.ikm)).toString('hex')).toBe(vector.prk);
    expect(hkdfExpand(vector.hash, hex(vector.prk), hex(vector.info), vector.L).toString('hex')).toBe(
      vector.okm,
    );
    expect(hkdf(vector.hash, hex(vector.ikm), salt, hex(vector.info), vector.L).toString('hex')).toBe(
      vector.okm,
    );
  });
});

describe('HKDF-SHA-256 against Wycheproof hkdf_sha256_test.json', () => {
  const file = readVectorJson<WycheproofHkdf>('crypto/hkdf_sha256_test.json');
  const tests = file.testGroups.flatMap((group) => group.tests);

  it('covers every test in the file', () => {
    expect(tests).toHaveLength(file.numberOfTests);
    expect(tests.filter((t) => t.result === 'invalid').length).toBeGreaterThan(0);
  });

  it.each(tests)('tcId $tcId ($result $flags)', (vector) => {
    const derive = (): Buffer =>
      hkdf('sha256', hex(vector.ikm), hex(vector.salt), hex(vector.info), vector.size);
    if (vector.result === 'valid') {
      expect(derive().toString('hex')).toBe(vector.okm);
    } else {
      expect(derive).toThrow(RangeError);
    }
  });
});

describe('HmacKey', () => {
  const hashes: HashName[] = ['sha1', 'sha256', 'sha512'];

  it('matches createHmac for keys shorter than, equal to and longer than the block size', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...hashes),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 700 }),
        (hashName, key, message) => {
          const expected = createHmac(hashName, key).update(message).digest('hex');
          expect(new HmacKey(hashName, key).digest(message).toString('hex')).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("matches node's HKDF when one instance is reused across inputs of changing length", () => {
    // The instance reuses scratch memory and caches views by length: a stale view or a leftover byte would
    // show up as a mismatch. hkdfSync always extracts, so the shared key is the PRK that extraction yields.
    fc.assert(
      fc.property(
        fc.constantFrom(...hashes),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 1500 }), fc.integer({ min: 0, max: 300 })), {
          minLength: 1,
          maxLength: 12,
        }),
        (hashName, ikm, inputs) => {
          const prk = createHmac(hashName, Buffer.alloc(0)).update(ikm).digest();
          const shared = new HmacKey(hashName, prk);
          for (const [info, length] of inputs) {
            const out = Buffer.alloc(length + 3, 0xaa);
            shared.expandInto(info, out, 3, length);
            const expected = Buffer.from(hkdfSync(hashName, ikm, Buffer.alloc(0), info, length));
            expect(out.subarray(3).toString('hex')).toBe(expected.toString('hex'));
            expect(out.subarray(0, 3).toString('hex')).toBe('aaaaaa');
            expect(shared.digest(info).toString('hex')).toBe(
              createHmac(hashName, prk).update(info).digest('hex'),
            );
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it('refuses output lengths HKDF cannot produce', () => {
    expect(() => hkdfExpand('sha512', Buffer.alloc(64, 1), Buffer.alloc(0), 255 * 64 + 1)).toThrow(
      RangeError,
    );
    expect(() => hkdfExpand('sha256', Buffer.alloc(32, 1), Buffer.alloc(0), -1)).toThrow(RangeError);
    expect(hkdfExpand('sha256', Buffer.alloc(32, 1), Buffer.alloc(0), 0)).toHaveLength(0);
    expect(hkdfExpand('sha512', Buffer.alloc(64, 1), Buffer.alloc(0), 255 * 64)).toHaveLength(255 * 64);
  });
});
