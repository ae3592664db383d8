export type { AuditLogger, CryptoAuditAction, CryptoAuditEvent, CryptoAuditSink } from './audit';
export { loggingAuditSink } from './audit';
export {
  DEFAULT_MAX_PLAINTEXT_BYTES,
  FORMAT_VERSION,
  sealedTextLength,
  sealedV1Length,
  TEXT_PREFIX,
} from './ciphertext';
export type { DataClass, EncryptionContext } from './context';
export { DATA_CLASSES } from './context';
export type {
  CryptoOperation,
  CryptoOperationCounter,
  CryptoOperationResult,
  CryptoService,
  CryptoServiceOptions,
  SealOptions,
} from './crypto-service';
export { createCryptoService } from './crypto-service';
export type { CryptoErrorCode } from './errors';
export { CryptoError } from './errors';
export type { CryptoHealth } from './health';
export { cryptoHealth, cryptoHealthHandler } from './health';
export type { KeyGeneration, Keyring, KeyringOptions } from './keyring';
export { createKeyring, KEY_ID_LENGTH, KEY_LENGTH, KeyEntry, localKeyGeneration, sameId } from './keyring';
export { runSelfTest } from './self-test';
