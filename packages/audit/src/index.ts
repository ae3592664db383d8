export {
  AUDIT_ACTION_INFO,
  AUDIT_ACTIONS,
  AUDIT_RESOURCE_TYPES,
  type AuditAction,
  type AuditResourceType,
  auditActionSchema,
  auditResourceTypeSchema,
  CRYPTO_AUDIT_ACTIONS,
  type CryptoAuditAction,
  DEPLOYMENT_AUDIT_ACTIONS,
  isCryptoAuditAction,
} from './actions';
export {
  type AuditLog,
  type AuditLogOptions,
  type AuditPage,
  createAuditLog,
  DEFAULT_RETENTION_DAYS,
  type PurgeOptions,
} from './audit-log';
export {
  type ChainFailureReason,
  type ChainHead,
  type ChainVerification,
  canonicalEntryJson,
  entryHash,
  GENESIS_HASH,
  type InvalidRow,
  type VerifyRowsOptions,
  verifyRows,
} from './chain';
export {
  type AuditCryptoSink,
  type CryptoAuditSinkOptions,
  cryptoAuditSink,
  cryptoEventEntry,
  DEFAULT_MAX_PENDING,
} from './crypto-sink';
export {
  type AuditEntry,
  type AuditEntryInput,
  auditEntryInputSchema,
  auditEntrySchema,
  auditRowSchema,
  type ChainedAuditEntry,
  chainedAuditEntrySchema,
  MAX_CHANGES_BYTES,
  MAX_USER_AGENT_LENGTH,
} from './entry';
export { AuditError, type AuditErrorCode, isAuditError } from './errors';
export type { JsonValue } from './json';
export type { AuditLogger } from './logger';
export {
  type AuditChanges,
  type AuditChangesInput,
  createSecretMatcher,
  DEFAULT_SECRET_FIELDS,
  DEFAULT_SECRET_PATTERN,
  type FieldChange,
  looksSecret,
  MASK,
  MASK_CHANGED,
  type MaskOptions,
  maskChanges,
  type SecretMatcher,
} from './mask';
export { auditMigrations } from './migrations';
export {
  type AuditListFilters,
  type AuditPageOptions,
  auditListFiltersSchema,
  auditPageOptionsSchema,
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
} from './query';
export { type VerifyChainOptions, verifyChain } from './verify';
