import { readVectorJson, readVectorText } from '@signal/testkit';
import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors';
import { gcmDecrypt, gcmEncryptInto } from './gcm';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

function encrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ct: string; tag: string } {
  const out = Buffer.alloc(plaintext.length + 16);
  const end = gcmEncryptInto(key, iv, plaintext, aad, out, 0);
  expect(end).toBe(out.length);
  return {
    ct: out.subarray(0, plaintext.length).toString('hex'),
    tag: out.subarray(plaintext.length).toString('hex'),
  };
}

interface WycheproofAead {
  testGroups: {
    keySize: number;
    ivSize: number;
    tagSize: number;
    tests: {
      tcId: number;
      key: string;
      iv: string;
      aad: string;
      msg: string;
      ct: string;
      tag: string;
      result: 'valid' | 'invalid' | 'acceptable';
      flags: string[];
    }[];
  }[];
}

describe('AES-256-GCM against Wycheproof aes_gcm_test.json (256-bit keys, 96-bit IVs)', () => {
  const groups = readVectorJson<WycheproofAead>('crypto/aes_gcm_test.json').testGroups.filter(
    (group) => group.keySize === 256 && group.ivSize === 96,
  );
  const tests = groups.flatMap((group) => group.tests);

  it('selects the 128-bit-tag groups, valid and invalid cases', () => {
    expect(groups.every((group) => group.tagSize === 128)).toBe(true);
    expect(tests).toHaveLength(66);
    expect(tests.filter((t) => t.result === 'invalid')).toHaveLength(27);
  });

  it.each(tests)('tcId $tcId ($result $flags)', (vector) => {
    const key = hex(vector.key);
    const iv = hex(vector.iv);
    const opened = gcmDecrypt(key, iv, hex(vector.ct), hex(vector.tag), hex(vector.aad));
    if (vector.result === 'valid') {
      expect(opened?.toString('hex')).toBe(vector.msg);
      expect(encrypt(key, iv, hex(vector.msg), hex(vector.aad))).toEqual({ ct: vector.ct, tag: vector.tag });
    } else {
      expect(opened).toBeUndefined();
    }
  });
});

interface RspCase {
  count: number;
  section: string;
  fields: Record<string, string>;
  fail: boolean;
}

/** NIST CAVP .rsp: `[Name = value]` section headers, blank-line separated `Name = value` blocks, `FAIL` lines. */
function parseRsp(text: string): RspCase[] {
  const cases: RspCase[] = [];
  let section: string[] = [];
  let sectionOpen = false;
  for (const block of text.split(/\r?\n\s*\r?\n/)) {
    const lines = block
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    if (lines.length === 0) continue;
    if (lines.every((line) => line.startsWith('['))) {
      if (!sectionOpen) section = [];
      section.push(...lines);
      sectionOpen = true;
      continue;
    }
    sectionOpen = false;
    const fields: Record<string, string> = {};
    let fail = false;
    for (const line of lines) {
      if (line === 'FAIL') {
        fail = true;
        continue;
      }
      const match = /^(\w+) = ?(.*)$/.exec(line);
      if (match === null) throw new Error(`unparsable .rsp line: ${line}`);
      fields[match[1] ?? ''] = match[2] ?? '';
    }
    cases.push({ count: Number(fields.Count), section: section.join(' '), fields, fail });
  }
  return cases;
}

const field = (c: RspCase, name: string): Buffer => hex(c.fields[name] ?? '');

describe('AES-256-GCM against NIST CAVP gcmEncryptExtIV256 (96-bit IV, 128-bit tag extract)', () => {
  const cases = parseRsp(readVectorText('crypto/gcmEncryptExtIV256_IV96_Tag128.rsp'));

  it('parses all 375 vectors', () => {
    expect(cases).toHaveLength(375);
    expect(
      cases.every((c) => c.section.includes('[Keylen = 256]') && c.section.includes('[IVlen = 96]')),
    ).toBe(true);
  });

  it.each(cases)('$section Count $count', (c) => {
    const result = encrypt(field(c, 'Key'), field(c, 'IV'), field(c, 'PT'), field(c, 'AAD'));
    expect(result).toEqual({ ct: c.fields.CT, tag: c.fields.Tag });
  });
});

describe('AES-256-GCM against NIST CAVP gcmDecrypt256 (96-bit IV, 128-bit tag extract)', () => {
  const text = readVectorText('crypto/gcmDecrypt256_IV96_Tag128.rsp');
  const cases = parseRsp(text);

  it('parses all 375 vectors, every FAIL case included', () => {
    expect(cases).toHaveLength(375);
    const failLines = text.split(/\r?\n/).filter((line) => line.trim() === 'FAIL').length;
    expect(failLines).toBeGreaterThan(100);
    expect(cases.filter((c) => c.fail)).toHaveLength(failLines);
  });

  it.each(cases)('$section Count $count (fail: $fail)', (c) => {
    const opened = gcmDecrypt(
      field(c, 'Key'),
      field(c, 'IV'),
      field(c, 'CT'),
      field(c, 'Tag'),
      field(c, 'AAD'),
    );
    if (c.fail) expect(opened).toBeUndefined();
    else expect(opened?.toString('hex')).toBe(c.fields.PT);
  });
});

describe('AES-256-GCM length checks', () => {
  const key = Buffer.alloc(32, 7);
  const iv = Buffer.alloc(12, 1);
  const sealed = Buffer.alloc(5 + 16);
  gcmEncryptInto(key, iv, Buffer.from('hello'), undefined, sealed, 0);

  it('refuses a truncated tag instead of checking fewer bits', () => {
    for (const length of [0, 4, 8, 12, 15]) {
      expect(() =>
        gcmDecrypt(key, iv, sealed.subarray(0, 5), sealed.subarray(5, 5 + length), undefined),
      ).toThrow(expect.objectContaining({ code: 'malformed' }));
    }
    expect(gcmDecrypt(key, iv, sealed.subarray(0, 5), sealed.subarray(5), undefined)?.toString()).toBe(
      'hello',
    );
  });

  it('refuses keys that are not 32 bytes', () => {
    for (const length of [0, 16, 24, 31, 33]) {
      expect(() =>
        gcmEncryptInto(Buffer.alloc(length, 1), iv, Buffer.alloc(1), undefined, Buffer.alloc(17), 0),
      ).toThrow(CryptoError);
    }
  });
});
