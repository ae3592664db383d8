export {
  type BootstrapLogger,
  bootstrapCrypto,
  type CryptoBootstrapOptions,
  type CryptoRuntime,
  DEV_KEY_FILE,
  type RotationAwareCryptoHealth,
  type RotationAwareHealthOptions,
  rotationAwareCryptoHealth,
} from './crypto-bootstrap';
export {
  databaseSchemaFor,
  type InfraLogger,
  kafkaBusSettings,
  openBus,
  openCache,
  openDatabase,
} from './infrastructure';
export {
  bootstrapCryptoWithKms,
  type CloudKmsLoader,
  type EnvelopeCryptoRuntime,
  type KmsBootstrapOptions,
  type KmsCryptoRuntime,
  type SubjectKeys,
} from './kms-bootstrap';
export {
  type Component,
  exitOnSignals,
  Lifecycle,
  type LifecycleLogger,
  type Shutdown,
  type ShutdownReason,
} from './lifecycle';
export { createSecretFile } from './secret-file';
export {
  openServiceHost,
  type ServiceContainer,
  type ServiceHost,
  type ServiceHostOptions,
  standaloneSchema,
} from './service-host';
export { runService, type ServiceMainDeps } from './service-main';
export { armStallWatchdog, type StallWatchdogOptions } from './stall-watchdog';
