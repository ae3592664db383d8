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
