export {
  type BootstrapLogger,
  bootstrapCrypto,
  type CryptoBootstrapOptions,
  type CryptoRuntime,
  DEV_KEY_FILE,
  type RotationAwareCryptoHealth,
  rotationAwareCryptoHealth,
} from './crypto-bootstrap';
export { databaseSchemaFor, type InfraLogger, openBus, openCache, openDatabase } from './infrastructure';
export {
  bootstrapCryptoWithKms,
  type CloudKmsLoader,
  type EnvelopeCryptoRuntime,
  type KmsBootstrapOptions,
  type KmsCryptoRuntime,
} from './kms-bootstrap';
export { type Component, exitOnSignals, Lifecycle, type LifecycleLogger } from './lifecycle';
