import type { WrappedKey } from '../provider';

/**
 * Re-wrap for providers without a native one (Key Vault, Cloud KMS): unwrap under the old KEK version, wrap
 * under the current one, and zero the plaintext DEK in between whatever happens.
 */
export async function unwrapThenWrap(
  unwrapped: Promise<Uint8Array>,
  wrap: (dek: Uint8Array) => Promise<WrappedKey>,
): Promise<WrappedKey> {
  const dek = await unwrapped;
  try {
    return await wrap(dek);
  } finally {
    dek.fill(0);
  }
}
