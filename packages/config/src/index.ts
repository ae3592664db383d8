export { deepFreeze } from './freeze';
export {
  type BusKind,
  ConfigError,
  type EncryptionProvider,
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
  LOG_LEVELS,
  SETTINGS,
  type SettingName,
  TLS_VERSIONS,
} from './settings';
