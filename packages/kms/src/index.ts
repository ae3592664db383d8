export type { DekCacheOptions, DekCacheResult, LoadedDek } from './dek-cache';
export { DekCache } from './dek-cache';
export type { DekClass, DekRow, DekState } from './dek-store';
export { DEK_CLASSES, DekStore, kmsMigrations } from './dek-store';
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
export type { LocalKmsOptions } from './providers/local';
export { createLocalKmsProvider } from './providers/local';
export { canonicalWrapContext, wrapContextSchema } from './wrap-context';
