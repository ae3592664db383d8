/**
 * The key-provider port: the four things envelope encryption asks of a KMS. A provider holds a key-encryption
 * key (KEK) that never leaves it; Signal generates (or asks for) a 32-byte data-encryption key (DEK), has the
 * provider wrap it, stores only the wrapped form, and asks the provider to unwrap it when a process needs it.
 *
 * Adapters: `local` (KEK derived from ENCRYPTION_KEY with HKDF), `aws-kms`, `gcp-kms`, `azure-keyvault`,
 * `hashicorp-vault` (Vault or OpenBao transit). Cloud SDKs are loaded lazily, only for their provider.
 *
 * Invariants every adapter keeps:
 * - The wrap context is sent to the provider wherever the provider can bind it (AWS `EncryptionContext`, GCP
 *   `additionalAuthenticatedData`, Vault derived-key `context`); Azure binds none, which is why the DEK row also
 *   carries a commitment `HMAC(DEK, wrap context)` checked by the caller after every unwrap.
 * - Plaintext DEKs are returned as fresh buffers the caller owns (and may zero); adapters keep no copy.
 * - Every call honours `options.signal` (the caller's timeout) and fails with a `KmsError`, never a raw SDK error,
 *   and the error message never contains key bytes, wrapped bytes or credentials.
 */

export const KMS_PROVIDER_NAMES = [
  'local',
  'aws-kms',
  'gcp-kms',
  'azure-keyvault',
  'hashicorp-vault',
] as const;
export type KmsProviderName = (typeof KMS_PROVIDER_NAMES)[number];

/**
 * What binds a wrapped DEK to its place, e.g. `{ purpose: 'signal-dek', namespace, data_class, dek_id }`.
 * Not secret (providers log it in their audit trails); keys and values are short ASCII strings. Adapters
 * serialise it canonically (keys sorted) where the provider takes bytes.
 */
export type WrapContext = Readonly<Record<string, string>>;

/** A DEK as stored: the provider's opaque ciphertext and the KEK (with version where the provider reports it). */
export interface WrappedKey {
  readonly ciphertext: Uint8Array;
  /** e.g. an AWS key ARN, a GCP cryptoKeyVersion name, an Azure key URL with version, `transit/signal:v3`. */
  readonly kekRef: string;
}

export interface KmsCallOptions {
  /** Aborts the call (the DEK cache passes a timeout signal); an aborted call fails with `kms_timeout`. */
  readonly signal: AbortSignal;
}

export interface KmsProvider {
  readonly name: KmsProviderName;
  /** The configured KEK as operators name it (key id/ARN, resource name, key URL, mount/key), for health and audit. */
  readonly kekId: string;
  /** Wraps a 32-byte DEK under the KEK's current version. */
  wrap(dek: Uint8Array, context: WrapContext, options: KmsCallOptions): Promise<WrappedKey>;
  /** Unwraps a DEK; a wrong context, wrong or disabled KEK fails (`kms_invalid_ciphertext` / `kms_denied`). */
  unwrap(wrapped: WrappedKey, context: WrapContext, options: KmsCallOptions): Promise<Uint8Array>;
  /**
   * Re-wraps under the KEK's current version (KEK rotation: DEK rows change, data does not). Providers without
   * a native rewrap implement it as unwrap + wrap inside the adapter.
   */
  rewrap(wrapped: WrappedKey, context: WrapContext, options: KmsCallOptions): Promise<WrappedKey>;
  /** Releases sockets and SDK clients. */
  close(): Promise<void>;
}

export type KmsErrorCode =
  /** Network error, connection refused, 5xx, throttling: may succeed later. */
  | 'kms_unavailable'
  /** The call did not finish before the caller's deadline. */
  | 'kms_timeout'
  /** Authentication or authorisation failed, or the KEK is disabled, revoked or scheduled for deletion. */
  | 'kms_denied'
  /** The KEK (or key version) does not exist. */
  | 'kms_key_not_found'
  /** The provider refused the wrapped key: tampered, wrapped by another KEK, or a different context. */
  | 'kms_invalid_ciphertext'
  /** The provider answered something this adapter does not understand. */
  | 'kms_bad_response'
  /** The provider's settings are incomplete or contradictory (the message names the variable). */
  | 'kms_misconfigured'
  /** The provider's optional SDK is not installed (the message names the package to install). */
  | 'kms_sdk_missing';

const RETRYABLE: ReadonlySet<KmsErrorCode> = new Set(['kms_unavailable', 'kms_timeout']);

/** The one error type of KMS adapters. Messages name the provider and the cause, never key or wrapped bytes. */
export class KmsError extends Error {
  readonly code: KmsErrorCode;
  readonly retryable: boolean;
  readonly provider: KmsProviderName;

  constructor(provider: KmsProviderName, code: KmsErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${provider}: ${message}`, options);
    this.name = 'KmsError';
    this.code = code;
    this.provider = provider;
    this.retryable = RETRYABLE.has(code);
  }
}
