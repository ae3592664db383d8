import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  type KmsCallOptions,
  KmsError,
  type KmsProvider,
  type WrapContext,
  type WrappedKey,
} from '../provider';
import { canonicalWrapContext } from '../wrap-context';

/**
 * The `local` KMS provider: KEKs derived from ENCRYPTION_KEY (and ENCRYPTION_KEY_PREVIOUS) with
 * HKDF-SHA-512, DEKs wrapped with AES-256-GCM and the canonical wrap context as associated data. No SDK, no
 * network. The labels differ from the keyring's (`signal/crypto/keyring/v1`, `data-key/…`), so a KEK is never
 * also a data key of direct-derivation mode, even under the same ENCRYPTION_KEY.
 *
 * Wrapped form: nonce (12) ‖ GCM ciphertext (32) ‖ tag (16). `kekRef` is `local:<kek id>`, the KEK's
 * 16-byte HKDF fingerprint in hex, so rotating ENCRYPTION_KEY is a KEK rotation (rewrap) and unwrap picks the
 * KEK by reference: the previous key keeps unwrapping until every DEK row is rewrapped.
 */
const SALT = Buffer.from('signal/kms/local/v1', 'latin1');
const KEK_LABEL = Buffer.from('kek', 'latin1');
const KEK_ID_LABEL = Buffer.from('kek-id', 'latin1');
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const DEK_LENGTH = 32;
const WRAPPED_LENGTH = NONCE_LENGTH + DEK_LENGTH + TAG_LENGTH;

export interface LocalKmsOptions {
  /** ENCRYPTION_KEY, 32 raw bytes. */
  readonly current: Uint8Array;
  /** ENCRYPTION_KEY_PREVIOUS during a KEK rotation: unwraps, never wraps. */
  readonly previous?: Uint8Array | undefined;
}

interface Kek {
  readonly ref: string;
  readonly key: Buffer;
}

function deriveKek(key: Uint8Array, name: string): Kek {
  if (key.byteLength !== 32) {
    throw new KmsError('local', 'kms_misconfigured', `${name} must be exactly 32 bytes`);
  }
  const id = Buffer.from(hkdfSync('sha512', key, SALT, KEK_ID_LABEL, 16)).toString('hex');
  return { ref: `local:${id}`, key: Buffer.from(hkdfSync('sha512', key, SALT, KEK_LABEL, 32)) };
}

export function createLocalKmsProvider(options: LocalKmsOptions): KmsProvider {
  const current = deriveKek(options.current, 'ENCRYPTION_KEY');
  const previous =
    options.previous === undefined ? undefined : deriveKek(options.previous, 'ENCRYPTION_KEY_PREVIOUS');
  if (previous?.ref === current.ref) {
    throw new KmsError(
      'local',
      'kms_misconfigured',
      'ENCRYPTION_KEY_PREVIOUS must differ from ENCRYPTION_KEY',
    );
  }
  let closed = false;

  function checkCall(options: KmsCallOptions): void {
    if (closed) throw new KmsError('local', 'kms_unavailable', 'provider is closed');
    if (options.signal.aborted) throw new KmsError('local', 'kms_timeout', 'call aborted before it ran');
  }

  function wrapWith(kek: Kek, dek: Uint8Array, context: WrapContext): WrappedKey {
    if (dek.byteLength !== DEK_LENGTH) {
      throw new KmsError('local', 'kms_misconfigured', `a DEK must be ${DEK_LENGTH} bytes`);
    }
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(canonicalWrapContext(context));
    const body = Buffer.concat([cipher.update(dek), cipher.final()]);
    return { ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]), kekRef: kek.ref };
  }

  function unwrapWith(wrapped: WrappedKey, context: WrapContext): Buffer {
    const kek =
      wrapped.kekRef === current.ref ? current : wrapped.kekRef === previous?.ref ? previous : undefined;
    if (kek === undefined) {
      throw new KmsError(
        'local',
        'kms_key_not_found',
        `no KEK ${wrapped.kekRef} (was its key removed too early?)`,
      );
    }
    const bytes = Buffer.from(wrapped.ciphertext);
    if (bytes.length !== WRAPPED_LENGTH) {
      throw new KmsError('local', 'kms_invalid_ciphertext', `wrapped key must be ${WRAPPED_LENGTH} bytes`);
    }
    const decipher = createDecipheriv('aes-256-gcm', kek.key, bytes.subarray(0, NONCE_LENGTH), {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(canonicalWrapContext(context));
    decipher.setAuthTag(bytes.subarray(NONCE_LENGTH + DEK_LENGTH));
    const dek = Buffer.alloc(DEK_LENGTH);
    try {
      decipher.update(bytes.subarray(NONCE_LENGTH, NONCE_LENGTH + DEK_LENGTH)).copy(dek);
      decipher.final();
    } catch {
      dek.fill(0);
      throw new KmsError(
        'local',
        'kms_invalid_ciphertext',
        'wrapped key does not open under its KEK and context',
      );
    }
    return dek;
  }

  return Object.freeze({
    name: 'local' as const,
    kekId: current.ref,
    async wrap(dek: Uint8Array, context: WrapContext, callOptions: KmsCallOptions): Promise<WrappedKey> {
      checkCall(callOptions);
      return wrapWith(current, dek, context);
    },
    async unwrap(
      wrapped: WrappedKey,
      context: WrapContext,
      callOptions: KmsCallOptions,
    ): Promise<Uint8Array> {
      checkCall(callOptions);
      return unwrapWith(wrapped, context);
    },
    async rewrap(
      wrapped: WrappedKey,
      context: WrapContext,
      callOptions: KmsCallOptions,
    ): Promise<WrappedKey> {
      checkCall(callOptions);
      const dek = unwrapWith(wrapped, context);
      try {
        return wrapWith(current, dek, context);
      } finally {
        dek.fill(0);
      }
    },
    async close(): Promise<void> {
      closed = true;
      current.key.fill(0);
      previous?.key.fill(0);
    },
  });
}
