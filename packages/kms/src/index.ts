export type {
  KmsCallOptions,
  KmsErrorCode,
  KmsProvider,
  KmsProviderName,
  WrapContext,
  WrappedKey,
} from './provider';
export { KMS_PROVIDER_NAMES, KmsError } from './provider';
