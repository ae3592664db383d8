import { createHash } from 'node:crypto';
import { CobblestoneKey, open } from './cobblestone';
import { CryptoError, type CryptoErrorCode } from './errors';
import { hkdfExpand, hkdfExtract } from './hkdf';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

/** 'YELLOW SUBMARINE YELLOW SUBMARIN' and 'ORANGE SUBMARINE ORANGE SUBMARIN', the Wycheproof keys. */
const YELLOW_KEY = '59454c4c4f57205355424d4152494e452059454c4c4f57205355424d4152494e';
const ORANGE_KEY = '4f52414e4745205355424d4152494e45204f52414e4745205355424d4152494e';

/**
 * Known answers from Wycheproof `c2sp_chunked_encryption_aes_256_gcm_test.json` (filippo.io/cobblestone,
 * empty context; `ct` inflated from the file's zlib form).
 */
const VALID = {
  // tcId 2, "short message, single chunk": 7 bytes of plaintext.
  key: YELLOW_KEY,
  ct:
    'a1a1b56f6db58cd1ede0c5c9db62aef20d3f96a6c594bb9252bb38122de91236502b42a1d7fcab820ffa292940d2f86add212cfa' +
    '42c38df19d3cc9139ee61a5990d3db57433514229beea49a8a72bd',
  msgSha512:
    'e85f32a85f1d4f7c9b2d36d20eca8435d81253e7075e9dea069eb1b6da48daf92ef1797367b520d8a46c4f72cecb85b1daff8887fcb4' +
    '1721d39943d1952fc180',
};
const MUST_FAIL: readonly { tcId: number; key: string; ct: string; code: CryptoErrorCode }[] = [
  {
    // tcId 22, "valid ciphertext decrypted with wrong key": the commitment check must refuse it.
    tcId: 22,
    key: ORANGE_KEY,
    ct:
      'abeb3f4f4a3ea1f1f76bc25808b37063d4cb21425ca6a8b16271ed22f6a3f51ec7e7fa4dcef196179d3c77b5b42103766ae1975' +
      'bae6ae0690079aa245e53811c13d45a553b0365b499',
    code: 'commitment_mismatch',
  },
  {
    // tcId 11, "single chunk with flipped ciphertext bit": the GCM tag check must refuse it.
    tcId: 11,
    key: YELLOW_KEY,
    ct:
      '0093274a932cb4340ca678d500719d80ccc21f69c49586a8cae519f1ae94a13a97038610177fe840ac755f6604849272444b0de5' +
      '59508a2a00538b8dd8cc3a83e14df1343fa14630a2',
    code: 'authentication_failed',
  },
];

/** RFC 5869 Appendix A.1 (HKDF-SHA-256): extract, then expand from the PRK. */
const RFC5869_A1 = {
  ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
  salt: '000102030405060708090a0b0c',
  info: 'f0f1f2f3f4f5f6f7f8f9',
  prk: '077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5',
  okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
};

const EMPTY = Buffer.alloc(0);

/**
 * Start-up known-answer test of the primitives this package stands on (HKDF over our HMAC, Cobblestone over
 * node's AES-256-GCM, the commitment and tag checks). Throws `self_test_failed` so a service refuses to start
 * rather than seal data it could not open, or open data it should refuse.
 */
export function runSelfTest(): void {
  const failures: string[] = [];

  const prk = hkdfExtract('sha256', hex(RFC5869_A1.salt), hex(RFC5869_A1.ikm));
  if (prk.toString('hex') !== RFC5869_A1.prk) failures.push('HKDF-Extract (RFC 5869 A.1)');
  const okm = hkdfExpand('sha256', hex(RFC5869_A1.prk), hex(RFC5869_A1.info), 42);
  if (okm.toString('hex') !== RFC5869_A1.okm) failures.push('HKDF-Expand (RFC 5869 A.1)');

  try {
    const plaintext = open(new CobblestoneKey(hex(VALID.key)), EMPTY, hex(VALID.ct), 0, 1024);
    if (createHash('sha512').update(plaintext).digest('hex') !== VALID.msgSha512) {
      failures.push('Cobblestone-256 tcId 2 decrypted to the wrong plaintext');
    }
  } catch (error) {
    failures.push(`Cobblestone-256 tcId 2 did not decrypt (${describe(error)})`);
  }

  for (const vector of MUST_FAIL) {
    try {
      open(new CobblestoneKey(hex(vector.key)), EMPTY, hex(vector.ct), 0, 1024);
      failures.push(`Cobblestone-256 tcId ${vector.tcId} was accepted`);
    } catch (error) {
      if (!(error instanceof CryptoError) || error.code !== vector.code) {
        failures.push(
          `Cobblestone-256 tcId ${vector.tcId} failed with ${describe(error)}, not ${vector.code}`,
        );
      }
    }
  }

  if (failures.length > 0) {
    throw new CryptoError('self_test_failed', `crypto self-test failed: ${failures.join('; ')}`);
  }
}

function describe(error: unknown): string {
  return error instanceof CryptoError ? error.code : error instanceof Error ? error.name : 'a non-error';
}
