import { ConfigError, type SignalConfig } from '@signal/config';
import { type CryptoError, createKeyring } from '@signal/crypto';
import {
  createLocalKmsProvider,
  type DekClass,
  type EnvelopeKeyring,
  type EnvelopeKeyringOptions,
  envelopeHealth,
  type KmsProvider,
  type KmsProviderName,
  kmsMigrations,
  loadCloudKmsProvider,
  openEnvelopeKeyring,
  type RewrapResult,
} from '@signal/kms';
import { type Database, requireMigrations } from '@signal/store';
import {
  bootstrapCrypto,
  type CryptoBootstrapOptions,
  type CryptoRuntime,
  meteredCryptoService,
} from './crypto-bootstrap';

/**
 * Builds a cloud provider (aws-kms, gcp-kms, azure-keyvault, hashicorp-vault) from the encryption settings.
 * Defaults to `@signal/kms`'s cloud loader, which imports each SDK only when its provider is selected; tests
 * inject providers typed against the port.
 */
export type CloudKmsLoader = (
  name: Exclude<KmsProviderName, 'local'>,
  encryption: SignalConfig['encryption'],
) => Promise<KmsProvider>;

export interface KmsBootstrapOptions extends CryptoBootstrapOptions {
  /** Where the wrapped DEKs live (`crypto_deks`, migrated with `kmsMigrations`). */
  readonly db: Database;
  readonly loadCloudProvider?: CloudKmsLoader;
  /** Names the process in the refusal message. */
  readonly service?: string;
}

/** What `bootstrapCryptoWithKms` returns in either mode: close it on shutdown (timers, SDK clients). */
export interface KmsCryptoRuntime extends CryptoRuntime {
  /** Envelope mode: KEK rotation (re-wraps DEK rows), for the re-encryption job's `rewrapKeys`. */
  readonly rewrapKeys?: () => Promise<RewrapResult>;
  /** Envelope mode: DEK rotation (a new active DEK per class; the job then migrates data). Returns the new ids. */
  readonly rotateDeks?: () => Promise<Readonly<Record<DekClass, string>>>;
  /** Envelope mode with ENCRYPTION_CRYPTO_SHREDDING: destroys the subjects' DEKs (the identity erasure's `shred`). */
  readonly shredSubjects?: (subjects: readonly string[]) => Promise<readonly string[]>;
  /**
   * Envelope mode with ENCRYPTION_CRYPTO_SHREDDING: per-subject DEKs for writers that seal inside a database
   * transaction (the identity graph): prepare a subject's DEK, or fetch a DEK, before the transaction opens;
   * inside it, `crypto.sealText(…, { subject })` and `openText` only use what is held.
   */
  readonly subjectKeys?: SubjectKeys;
  close(): Promise<void>;
}

/** See `KmsCryptoRuntime.subjectKeys`. */
export interface SubjectKeys {
  /** Outside any transaction: makes the subject's DEK ready to seal (creating it at most once). */
  prepare(subject: string): Promise<void>;
  /** No I/O: the subject's DEK is ready to seal. */
  ready(subject: string): boolean;
  /** No I/O: this process can open data under the DEK with this hex id now. */
  holds(keyId: string): boolean;
  /** Outside any transaction: fetches and unwraps the DEK with this hex id (rejects with a `CryptoError`). */
  fetch(keyId: string): Promise<void>;
}

/** A crypto runtime in envelope mode also exposes its keyring (DEK rotation, counts). */
export interface EnvelopeCryptoRuntime extends KmsCryptoRuntime {
  readonly envelope: EnvelopeKeyring;
}

/**
 * The crypto runtime for any configuration. `ENCRYPTION_PROVIDER=local` without `ENCRYPTION_ENVELOPE` is the
 * direct-derivation mode, exactly as `bootstrapCrypto` builds it (no database access). Otherwise envelope
 * mode (docs/adr/0006-envelope-encryption-kms-deks.md): the provider is built, every data class's
 * active DEK is unwrapped (created on first start), and a provider that cannot unwrap them (unreachable,
 * revoked or wrong KEK) stops the process with a message saying so: there is no plaintext or fallback-key
 * mode to fall back to, whatever REQUIRE_ENCRYPTION says.
 */
export async function bootstrapCryptoWithKms(options: KmsBootstrapOptions): Promise<KmsCryptoRuntime> {
  const encryption = options.config.encryption;
  if (!encryption.envelope) {
    const runtime = bootstrapCrypto(options);
    return { ...runtime, close: async () => {} };
  }
  return bootstrapEnvelope(options);
}

async function bootstrapEnvelope(options: KmsBootstrapOptions): Promise<EnvelopeCryptoRuntime> {
  const { config, logger } = options;
  const encryption = config.encryption;
  await requireMigrations(options.db, kmsMigrations, options.service ?? 'signal');
  const provider = await buildProvider(encryption, options.loadCloudProvider);
  let keyring: EnvelopeKeyring;
  try {
    keyring = await openEnvelopeKeyring({
      db: options.db,
      provider,
      ...(options.audit ? { audit: options.audit } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      kmsTimeoutMs: encryption.kmsTimeoutMs,
      shredding: encryption.cryptoShredding,
      ...legacyKeys(encryption),
      cache: {
        ttlMs: encryption.dekCache.ttlSeconds * 1000,
        maxEntries: encryption.dekCache.maxEntries,
        staleGraceMs: encryption.dekCache.staleGraceSeconds * 1000,
      },
    });
  } catch (error) {
    await provider.close().catch(() => undefined);
    const code = (error as Partial<CryptoError>).code ?? 'error';
    throw new ConfigError([
      `ENCRYPTION_PROVIDER=${encryption.provider}: the key provider could not unwrap the data-encryption keys with KEK ${provider.kekId} (${code}: ${error instanceof Error ? error.message : 'unknown error'}). The KEK may be revoked, disabled or unreachable, or another KEK is configured. Refusing to start: Signal never falls back to plaintext or to another key.`,
    ]);
  }
  const crypto = meteredCryptoService(keyring, options);
  const health = envelopeHealth(keyring, { providerName: encryption.provider });
  await health.refresh();
  logger.info(
    { provider: encryption.provider, kek: provider.kekId, deks: keyring.activeKeyIds() },
    'envelope encryption ready: data-encryption keys unwrapped',
  );
  return {
    crypto,
    health: () => health.health(),
    developmentKeyPath: null,
    envelope: keyring,
    rewrapKeys: () => keyring.rewrapDeks(),
    rotateDeks: () => keyring.rotateDeks(),
    ...(encryption.cryptoShredding
      ? {
          shredSubjects: (subjects: readonly string[]) => keyring.destroySubjects(subjects),
          subjectKeys: {
            prepare: (subject: string) => keyring.prepareSubject(subject),
            ready: (subject: string) => keyring.subjectReady(subject),
            holds: (keyId: string) => keyring.holds(keyId),
            fetch: (keyId: string) => keyring.prepare(Buffer.from(keyId, 'hex')),
          },
        }
      : {}),
    async close() {
      await keyring.close();
      await provider.close();
    },
  };
}

/**
 * Data sealed in direct mode stays readable after envelope mode is turned on: ENCRYPTION_KEY (and _PREVIOUS)
 * open it until the re-encryption job has moved it under the DEKs. With a KMS provider ENCRYPTION_KEY is then
 * only that, the previous key, and goes once `records_under_previous_key` is 0 (docs/key-rotation.md).
 */
function legacyKeys(encryption: SignalConfig['encryption']): Pick<EnvelopeKeyringOptions, 'legacy'> {
  const key = encryption.key?.reveal();
  if (key === undefined) return {};
  const previous = encryption.previousKey?.reveal();
  const keyring = createKeyring({
    current: Buffer.from(key, 'hex'),
    ...(previous === undefined ? {} : { previous: Buffer.from(previous, 'hex') }),
  });
  return { legacy: { keyring, asPrevious: encryption.provider !== 'local' } };
}

async function buildProvider(
  encryption: SignalConfig['encryption'],
  loadCloudProvider: CloudKmsLoader | undefined,
): Promise<KmsProvider> {
  if (encryption.provider === 'local') {
    const key = encryption.key?.reveal();
    if (key === undefined) {
      throw new ConfigError([
        'ENCRYPTION_ENVELOPE is true but ENCRYPTION_KEY is not set: the local provider derives its KEK from ENCRYPTION_KEY',
      ]);
    }
    const previous = encryption.previousKey?.reveal();
    return createLocalKmsProvider({
      current: Buffer.from(key, 'hex'),
      ...(previous === undefined ? {} : { previous: Buffer.from(previous, 'hex') }),
    });
  }
  // The cloud loader imports only the selected provider's SDK; a missing one fails with kms_sdk_missing.
  return (loadCloudProvider ?? loadCloudKmsProvider)(encryption.provider, encryption);
}
