export {
  type CachedCredentialSource,
  type CachedCredentialSourceOptions,
  cachedCredentialSource,
} from './credentials/cached-credential-source';
export {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  planRetry,
  type RetryPlan,
  retryCaps,
} from './delivery/backoff';
export {
  type BatchControl,
  type BatchDeliverer,
  type BatchDelivererDeps,
  type BatchSummary,
  type BreakerSettings,
  createBatchDeliverer,
} from './delivery/batch-deliverer';
export {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitState,
  type Permit,
} from './delivery/circuit-breaker';
export {
  createRuntimeDirectory,
  type IntegrationRuntime,
  type RuntimeDirectory,
  type RuntimeDirectoryOptions,
  type RuntimeLookup,
  type RuntimeProblem,
} from './delivery/integration-runtime';
export { TokenBucket } from './delivery/token-bucket';
export {
  createDeliveryWorker,
  type DeliveryWorker,
  type DeliveryWorkerDeps,
  type WorkerSettings,
  workerSettingsSchema,
} from './delivery-worker';
export {
  createDlqStore,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterRow,
  type DlqStore,
} from './dlq/dlq-store';
export {
  DELIVERY_WORKER_ENCRYPTED_COLUMNS,
  DLQ_LETTER_COLUMN,
  type DlqCrypto,
  deadLetterContext,
} from './dlq/encrypted-columns';
export { MASK, maskPersonalData } from './dlq/mask';
export {
  REPLAY_HEADER,
  type ReplayDeps,
  type ReplayOptions,
  type ReplayResult,
  replayDlq,
  type SkipReason,
} from './dlq/replay';
export {
  createSubjectPurge,
  type SubjectMatcher,
  type SubjectPurge,
  type SubjectPurgeCounts,
} from './erasure/subject-purge';
export { createDeliveryLedger, type DeliveryLedger } from './ledger/delivery-ledger';
export { type WorkerMetrics, workerMetrics } from './metrics';
export { deliveryWorkerMigrations } from './migrations';
export type {
  CredentialSource,
  WorkerIntegrationInput,
  WorkerIntegrationSource,
  WorkerLogger,
} from './ports';
export {
  RETRY_PAYLOAD_COLUMN,
  type RetryCrypto,
  retryPayloadContext,
} from './retry/encrypted-columns';
export {
  type ClaimedRetries,
  createRetryStore,
  type RetryEntry,
  type RetryStore,
  type UnreadableRetry,
} from './retry/retry-store';
export {
  controlPlaneWorkerSources,
  type WorkerSources,
} from './sources/control-plane-sources.adapter';
