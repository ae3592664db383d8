import type { CryptoAuditSink } from './audit';
import {
  asBuffer,
  createRandomPool,
  DEFAULT_MAX_PLAINTEXT_BYTES,
  decodeText,
  encodeText,
  openV1,
  readKeyId,
  sealV1,
} from './ciphertext';
import { ContextEncoder, canonicalRowId, type EncryptionContext } from './context';
import { CryptoError, type CryptoErrorCode } from './errors';
import type { KeyEntry, Keyring } from './keyring';
import { runSelfTest } from './self-test';

export type CryptoOperation = 'seal' | 'open';
export type CryptoOperationResult = 'success' | CryptoErrorCode;

/**
 * Called once per seal/open, e.g. to count `signal_crypto_operations_total{op,key_id,result}`. `keyId` is the
 * hex fingerprint of a key this process holds, `unknown` when a ciphertext names any other id (attacker
 * controlled, so never a label value) and `none` when no key id could be read: label values stay bounded.
 */
export type CryptoOperationCounter = (
  op: CryptoOperation,
  keyId: string,
  result: CryptoOperationResult,
) => void;

export interface CryptoServiceOptions {
  readonly keyring: Keyring;
  readonly audit?: CryptoAuditSink;
  readonly onOperation?: CryptoOperationCounter;
  /** Largest plaintext sealed or opened; defaults to 64 MiB. */
  readonly maxPlaintextBytes?: number;
}

export interface SealOptions {
  /** The data subject (e.g. an identity profile id) whose key seals this value, when the keyring has such keys. */
  readonly subject?: string;
}

/** Seals and opens v1 ciphertexts with a keyring: the one API services use for data at rest and tokens. */
export interface CryptoService {
  readonly keyring: Keyring;
  /**
   * Seals with the current key. A string plaintext is encrypted as UTF-8. With `subject` (crypto-shredding),
   * seals under that subject's DEK, which `sealAsync` for the subject must have made ready (this call does
   * no I/O, so it works inside a database transaction); throws `key_unavailable` when it is not ready.
   */
  seal(plaintext: Uint8Array | string, context: EncryptionContext, options?: SealOptions): Buffer;
  /** Opens with whichever held key the ciphertext names; `context` must equal the one it was sealed with. */
  open(ciphertext: Uint8Array, context: EncryptionContext): Buffer;
  /** `seal`, in the text form (`v1.` + base64url) for text columns and URLs. */
  sealText(plaintext: Uint8Array | string, context: EncryptionContext, options?: SealOptions): string;
  /** `open` for the text form. */
  openText(text: string, context: EncryptionContext): Buffer;
  /**
   * `seal` under the key of one data subject when the keyring keeps per-subject keys (crypto-shredding:
   * destroying that key erases the subject's data wherever its ciphertext lives); otherwise `seal`.
   */
  sealAsync(
    plaintext: Uint8Array | string,
    context: EncryptionContext,
    options: SealOptions,
  ): Promise<Buffer>;
  /** `sealAsync` in the text form. */
  sealTextAsync(
    plaintext: Uint8Array | string,
    context: EncryptionContext,
    options: SealOptions,
  ): Promise<string>;
  /**
   * `open` that first makes the named key available (an envelope keyring fetches and unwraps a DEK it does
   * not hold yet, through its cache). With a local keyring it is `open`. Use it wherever the caller is async.
   */
  openAsync(ciphertext: Uint8Array, context: EncryptionContext): Promise<Buffer>;
  /** `openAsync` for the text form. */
  openTextAsync(text: string, context: EncryptionContext): Promise<Buffer>;
  /** True when the ciphertext names a key other than the current one (the re-encryption job's filter). */
  needsReencryption(ciphertext: Uint8Array | string): boolean;
  /** Hex key id a ciphertext (binary or text form) names; throws `malformed`/`unknown_version` otherwise. */
  keyIdOf(ciphertext: Uint8Array | string): string;
}

/**
 * Builds the crypto service: runs the known-answer self-test (throws `self_test_failed`), then records
 * `crypto.key_loaded`, and `crypto.key_rotated` when a previous key puts the process in dual-key mode.
 */
export function createCryptoService(options: CryptoServiceOptions): CryptoService {
  const { keyring, audit, onOperation } = options;
  const maxPlaintextBytes = options.maxPlaintextBytes ?? DEFAULT_MAX_PLAINTEXT_BYTES;
  if (!Number.isSafeInteger(maxPlaintextBytes) || maxPlaintextBytes < 0) {
    throw new RangeError('maxPlaintextBytes must be a non-negative safe integer');
  }
  runSelfTest();
  const randomFill = createRandomPool();
  const encoder = new ContextEncoder();

  audit?.record({
    action: 'crypto.key_loaded',
    provider: keyring.provider,
    keyId: keyring.currentKeyId,
    previousKeyId: keyring.previousKeyId ?? null,
    dualKeyMode: keyring.dualKeyMode,
  });
  if (keyring.previousKeyId !== undefined) {
    audit?.record({
      action: 'crypto.key_rotated',
      provider: keyring.provider,
      keyId: keyring.currentKeyId,
      previousKeyId: keyring.previousKeyId,
    });
  }

  function seal(
    plaintext: Uint8Array | string,
    context: EncryptionContext,
    entry: KeyEntry = keyring.sealingEntry(context.dataClass),
  ): Buffer {
    try {
      const sealed = sealV1(entry, encoder, context, plaintext, maxPlaintextBytes, randomFill);
      onOperation?.('seal', entry.idHex, 'success');
      return sealed;
    } catch (error) {
      if (error instanceof CryptoError) onOperation?.('seal', entry.idHex, error.code);
      throw error;
    }
  }

  function openBytes(bytes: Buffer, context: EncryptionContext): Buffer {
    let keyId: Buffer | undefined;
    let label = 'none';
    try {
      keyId = readKeyId(bytes);
      const entry = keyring.find(keyId);
      if (entry === undefined) {
        label = 'unknown';
        throw new CryptoError('unknown_key_id', 'ciphertext names a key this process does not hold');
      }
      label = entry.idHex;
      const plaintext = openV1(entry, encoder, context, bytes, maxPlaintextBytes);
      onOperation?.('open', label, 'success');
      return plaintext;
    } catch (error) {
      if (error instanceof CryptoError) failed(error, keyId, label, context);
      throw error;
    }
  }

  function failed(
    error: CryptoError,
    keyId: Buffer | undefined,
    label: string,
    context: EncryptionContext,
  ): void {
    audit?.record({
      action: 'crypto.decrypt_failed',
      code: error.code,
      keyId: keyId === undefined ? null : keyId.toString('hex'),
      purpose: String(context.purpose),
      dataClass: context.dataClass ?? null,
      table: context.table ?? null,
      column: context.column ?? null,
      rowId: safeRowId(context.rowId),
    });
    onOperation?.('open', label, error.code);
  }

  /** The binary form as a Buffer; a malformed input is audited and counted like any other failed open. */
  function binaryForm(ciphertext: Uint8Array, context: EncryptionContext): Buffer {
    try {
      return asBuffer(ciphertext);
    } catch (error) {
      if (error instanceof CryptoError) failed(error, undefined, 'none', context);
      throw error;
    }
  }

  /** The text form decoded; a malformed input is audited and counted like any other failed open. */
  function textForm(text: string, context: EncryptionContext): Buffer {
    try {
      return decodeText(text, maxPlaintextBytes);
    } catch (error) {
      if (error instanceof CryptoError) failed(error, undefined, 'none', context);
      throw error;
    }
  }

  /**
   * Loads the key a ciphertext names when the keyring can fetch keys and does not hold it. A failure is
   * audited like any failed open (the code says why: `unknown_key_id` for a destroyed or missing DEK).
   */
  async function prepare(bytes: Buffer, context: EncryptionContext): Promise<void> {
    if (keyring.prepare === undefined) return;
    let keyId: Buffer | undefined;
    try {
      keyId = readKeyId(bytes);
      if (keyring.find(keyId) !== undefined) return;
      await keyring.prepare(keyId);
    } catch (error) {
      if (error instanceof CryptoError)
        failed(error, keyId, keyId === undefined ? 'none' : 'unknown', context);
      throw error;
    }
  }

  function toBytes(ciphertext: Uint8Array | string): Buffer {
    return typeof ciphertext === 'string' ? decodeText(ciphertext, maxPlaintextBytes) : asBuffer(ciphertext);
  }

  async function sealAsync(
    plaintext: Uint8Array | string,
    context: EncryptionContext,
    options: SealOptions,
  ): Promise<Buffer> {
    const subjectEntry =
      options.subject === undefined || keyring.subjectEntry === undefined
        ? undefined
        : await keyring.subjectEntry(context.dataClass, options.subject);
    return seal(plaintext, context, subjectEntry ?? keyring.sealingEntry(context.dataClass));
  }

  /** The entry a synchronous seal uses: the subject's ready DEK when the keyring keeps them for this class. */
  function syncEntry(context: EncryptionContext, options: SealOptions | undefined): KeyEntry {
    if (options?.subject !== undefined && keyring.readySubjectEntry !== undefined) {
      const entry = keyring.readySubjectEntry(context.dataClass, options.subject);
      if (entry === undefined) {
        throw new CryptoError(
          'key_unavailable',
          "the subject's DEK is not ready: make it ready with sealAsync outside the transaction",
        );
      }
      if (entry !== null) return entry;
    }
    return keyring.sealingEntry(context.dataClass);
  }

  return Object.freeze({
    keyring,
    seal: (plaintext: Uint8Array | string, context: EncryptionContext, options?: SealOptions) =>
      seal(plaintext, context, syncEntry(context, options)),
    sealAsync,
    async sealTextAsync(plaintext: Uint8Array | string, context: EncryptionContext, options: SealOptions) {
      return encodeText(await sealAsync(plaintext, context, options));
    },
    open(ciphertext: Uint8Array, context: EncryptionContext): Buffer {
      return openBytes(binaryForm(ciphertext, context), context);
    },
    sealText(plaintext: Uint8Array | string, context: EncryptionContext, options?: SealOptions): string {
      return encodeText(seal(plaintext, context, syncEntry(context, options)));
    },
    openText(text: string, context: EncryptionContext): Buffer {
      return openBytes(textForm(text, context), context);
    },
    async openAsync(ciphertext: Uint8Array, context: EncryptionContext): Promise<Buffer> {
      const bytes = binaryForm(ciphertext, context);
      await prepare(bytes, context);
      return openBytes(bytes, context);
    },
    async openTextAsync(text: string, context: EncryptionContext): Promise<Buffer> {
      const bytes = textForm(text, context);
      await prepare(bytes, context);
      return openBytes(bytes, context);
    },
    needsReencryption(ciphertext: Uint8Array | string): boolean {
      return !keyring.isCurrent(readKeyId(toBytes(ciphertext)));
    },
    keyIdOf(ciphertext: Uint8Array | string): string {
      return readKeyId(toBytes(ciphertext)).toString('hex');
    },
  });
}

/** Row id for an audit entry; an invalid one (which failed the context check) is recorded as null. */
function safeRowId(rowId: EncryptionContext['rowId']): string | null {
  try {
    return canonicalRowId(rowId) ?? null;
  } catch {
    return null;
  }
}
