import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KmsError } from '../provider';
import { createLocalKmsProvider } from './local';

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const context = { purpose: 'signal-dek', data_class: 'credentials', dek_id: 'a1' };
const call = () => ({ signal: new AbortController().signal });

async function kmsCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(KmsError);
  return (error as KmsError).code;
}

describe('local KMS provider', () => {
  it('wraps a DEK so that only the same KEK and wrap context unwrap it', async () => {
    const kms = createLocalKmsProvider({ current: keyA });
    const dek = randomBytes(32);
    const wrapped = await kms.wrap(dek, context, call());
    expect(Buffer.from(wrapped.ciphertext).includes(dek)).toBe(false);
    expect(wrapped.kekRef).toBe(kms.kekId);
    expect(Buffer.from(await kms.unwrap(wrapped, context, call()))).toEqual(dek);

    const otherClass = { ...context, data_class: 'identity' };
    expect(await kmsCode(kms.unwrap(wrapped, otherClass, call()))).toBe('kms_invalid_ciphertext');
    const tampered = Buffer.from(wrapped.ciphertext);
    tampered[20] = (tampered[20] ?? 0) ^ 1;
    expect(await kmsCode(kms.unwrap({ ...wrapped, ciphertext: tampered }, context, call()))).toBe(
      'kms_invalid_ciphertext',
    );
  });

  it('rotates the KEK: the previous key still unwraps, rewrap moves the DEK to the current KEK', async () => {
    const old = createLocalKmsProvider({ current: keyA });
    const dek = randomBytes(32);
    const wrapped = await old.wrap(dek, context, call());

    const rotated = createLocalKmsProvider({ current: keyB, previous: keyA });
    expect(rotated.kekId).not.toBe(old.kekId);
    expect(Buffer.from(await rotated.unwrap(wrapped, context, call()))).toEqual(dek);
    const rewrapped = await rotated.rewrap(wrapped, context, call());
    expect(rewrapped.kekRef).toBe(rotated.kekId);

    const finished = createLocalKmsProvider({ current: keyB });
    expect(Buffer.from(await finished.unwrap(rewrapped, context, call()))).toEqual(dek);
    expect(await kmsCode(finished.unwrap(wrapped, context, call()))).toBe('kms_key_not_found');
  });

  it('derives KEKs apart from the data keys of direct-derivation mode and from other keys', async () => {
    const a = createLocalKmsProvider({ current: keyA });
    const b = createLocalKmsProvider({ current: keyB });
    const wrapped = await a.wrap(randomBytes(32), context, call());
    expect(await kmsCode(b.unwrap({ ...wrapped, kekRef: b.kekId }, context, call()))).toBe(
      'kms_invalid_ciphertext',
    );
  });

  it('honours an aborted signal and refuses wrong-sized DEKs', async () => {
    const kms = createLocalKmsProvider({ current: keyA });
    const aborted = new AbortController();
    aborted.abort();
    expect(await kmsCode(kms.wrap(randomBytes(32), context, { signal: aborted.signal }))).toBe('kms_timeout');
    expect(await kmsCode(kms.wrap(randomBytes(16), context, call()))).toBe('kms_misconfigured');
    expect(() => createLocalKmsProvider({ current: keyA, previous: keyA })).toThrow(/must differ/);
  });
});
