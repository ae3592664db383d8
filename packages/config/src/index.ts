export { ipOrCidrItem } from './fields';
export { deepFreeze } from './freeze';
export {
  type BusKind,
  ConfigError,
  type EncryptionProvider,
  type KafkaSaslMechanism,
  type LoadConfigOptions,
  type LogLevel,
  loadConfig,
  type SignalConfig,
  type TlsVersion,
} from './load';
export { isSecret, Secret } from './secret';
export {
  BUS_KINDS,
  ENCRYPTION_PROVIDERS,
  KAFKA_SASL_MECHANISMS,
  LOG_LEVELS,
  SETTINGS,
  type SettingName,
  TLS_VERSIONS,
} from './settings';
