import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { readVectorJson } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { runSelfTest } from './self-test';

describe('runSelfTest', () => {
  it('passes on this platform', () => {
    expect(() => runSelfTest()).not.toThrow();
  });

  it('embeds the Wycheproof vectors it cites, byte for byte', () => {
    // The self-test carries tcId 2, 11 and 22 inline; check them against the vector file so a typo in the
    // embedded hex cannot turn a must-fail case into a vacuous one.
    const source = readFileSync(new URL('./self-test.ts', import.meta.url), 'utf8').replace(
      /'\s*\+\s*'/g,
      '',
    );
    const file = readVectorJson<{
      testGroups: { tests: { tcId: number; key: string; ct: string; msgSha512?: string }[] }[];
    }>('crypto/c2sp_chunked_encryption_aes_256_gcm_test.json');
    const byId = new Map(file.testGroups.flatMap((group) => group.tests).map((test) => [test.tcId, test]));
    for (const tcId of [2, 11, 22]) {
      const vector = byId.get(tcId);
      if (vector === undefined) throw new Error(`tcId ${tcId} missing from the vector file`);
      expect(source).toContain(inflateSync(Buffer.from(vector.ct, 'hex')).toString('hex'));
      expect(source).toContain(vector.key);
    }
    expect(source).toContain(byId.get(2)?.msgSha512);
  });
});
