export type { DekCacheOptions, DekCacheResult, LoadedDek } from './dek-cache';
export { DekCache } from './dek-cache';
export type { DekClass, DekRow, DekState } from './dek-store';
export { activeSubjectDekSql, DEK_CLASSES, DekStore, kmsMigrations } from './dek-store';
export type { EnvelopeCryptoHealth, EnvelopeHealth, EnvelopeHealthOptions } from './envelope-health';
export { envelopeHealth } from './envelope-health';
export type {
  DekCacheSettings,
  EnvelopeKeyring,
  EnvelopeKeyringOptions,
  RewrapResult,
} from './envelope-keyring';
export { dekCommitment, dekWrapContext, openEnvelopeKeyring } from './envelope-keyring';
export type {
  KmsCallOptions,
  KmsErrorCode,
  KmsProvider,
  KmsProviderName,
  WrapContext,
  WrappedKey,
} from './provider';
export { KMS_PROVIDER_NAMES, KmsError } from './provider';
// ── Cloud KMS adapters (aws-kms, gcp-kms, azure-keyvault, hashicorp-vault) ──
export {
  type CloudKmsProviderName,
  type CloudKmsSettings,
  type CloudKmsTestHooks,
  loadCloudKmsProvider,
  type SecretValue,
} from './providers/cloud';
export type { LocalKmsOptions } from './providers/local';
export { createLocalKmsProvider } from './providers/local';
export { canonicalWrapContext, checkWrapContext } from './wrap-context';
