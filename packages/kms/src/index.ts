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
export { canonicalWrapContext, checkWrapContext } from './providers/wrap-context';
