import { describe, expect, it } from 'vitest';
import { createScryptHasher, DEFAULT_SCRYPT_COST } from './password-hasher';

const cheap = { N: 2 ** 10, r: 8, p: 1 };

describe('scrypt password hasher', () => {
  it('defaults to N = 2^15, r = 8, p = 1 and stores the parameters with the hash', async () => {
    expect(DEFAULT_SCRYPT_COST).toEqual({ N: 32768, r: 8, p: 1 });
    const encoded = await createScryptHasher().hash('a long enough password');
    expect(encoded).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  });

  it('verifies the right password only, with a fresh salt per hash', async () => {
    const hasher = createScryptHasher({ cost: cheap });
    const a = await hasher.hash('hunter2hunter2');
    const b = await hasher.hash('hunter2hunter2');
    expect(a).not.toBe(b);
    expect(await hasher.verify('hunter2hunter2', a)).toBe(true);
    expect(await hasher.verify('hunter2hunter3', a)).toBe(false);
    expect(await hasher.verify('', a)).toBe(false);
  });

  it('treats canonically equivalent Unicode passwords as the same password', async () => {
    const hasher = createScryptHasher({ cost: cheap });
    const composed = await hasher.hash('caf\u00e9 au lait!!');
    expect(await hasher.verify('cafe\u0301 au lait!!', composed)).toBe(true);
  });

  it('verifies with the stored cost and reports hashes below the current cost', async () => {
    const old = await createScryptHasher({ cost: cheap }).hash('password-from-2020');
    const stronger = createScryptHasher({ cost: { N: 2 ** 11, r: 8, p: 1 } });
    expect(await stronger.verify('password-from-2020', old)).toBe(true);
    expect(stronger.needsRehash(old)).toBe(true);
    expect(stronger.needsRehash(await stronger.hash('x'))).toBe(false);
  });

  it('refuses malformed or out-of-bounds stored hashes (a tampered row cannot force huge allocations)', async () => {
    const hasher = createScryptHasher({ cost: cheap });
    const good = await hasher.hash('pw-pw-pw-pw-pw');
    expect(await hasher.verify('pw-pw-pw-pw-pw', good.replace('ln=10', 'ln=25'))).toBe(false);
    expect(await hasher.verify('pw-pw-pw-pw-pw', good.replace('r=8', 'r=99'))).toBe(false);
    expect(await hasher.verify('pw-pw-pw-pw-pw', 'plaintext-password')).toBe(false);
    expect(await hasher.verify('pw-pw-pw-pw-pw', good.slice(0, -2))).toBe(false);
    expect(hasher.needsRehash('garbage')).toBe(true);
  });

  it('rejects a cost outside the supported bounds at construction', () => {
    expect(() => createScryptHasher({ cost: { N: 1000, r: 8, p: 1 } })).toThrow(RangeError);
    expect(() => createScryptHasher({ cost: { N: 2 ** 21, r: 8, p: 1 } })).toThrow(RangeError);
  });
});
