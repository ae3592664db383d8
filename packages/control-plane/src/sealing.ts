import { type CryptoService, type EncryptionContext, TEXT_PREFIX } from '@signal/crypto';

/** The slice of the crypto service the control plane uses. */
export type ControlPlaneCrypto = Pick<CryptoService, 'sealText' | 'openText' | 'keyIdOf'>;

export interface SealedColumn {
  /** v1 text form, stored in the TEXT column. */
  readonly text: string;
  /** Hex key id, stored in the key-id column beside it. */
  readonly keyId: string;
}

export function sealColumn(
  crypto: ControlPlaneCrypto,
  plaintext: string | Uint8Array,
  context: EncryptionContext,
): SealedColumn {
  const text = crypto.sealText(plaintext, context);
  return { text, keyId: crypto.keyIdOf(text) };
}

/** True for a stored v1 ciphertext; false for a legacy plaintext value written before encryption existed. */
export function isSealedText(stored: string): boolean {
  return stored.startsWith(TEXT_PREFIX);
}

/**
 * Opens a stored value. A legacy plaintext value (no `v1.` prefix) is returned as is: it predates encryption
 * and the re-encryption job seals it; everything with the prefix must open under its context or throws the
 * crypto service's `CryptoError` (which also records `crypto.decrypt_failed`).
 */
export function openColumn(crypto: ControlPlaneCrypto, stored: string, context: EncryptionContext): Buffer {
  return isSealedText(stored) ? crypto.openText(stored, context) : Buffer.from(stored, 'utf8');
}
