export {
  type IdentityHubSettings,
  type IdentityHubSettingsInput,
  identityHubSettings,
  identityHubSettingsSchema,
  loadIdentityHubSettings,
} from './config';
export { IdentityHubError, type IdentityHubErrorCode, isIdentityHubError } from './errors';
export { type BlindIndex, INDEX_KEY_ID, loadBlindIndex, readBlindIndex } from './graph/blind-index';
export {
  type ConsentOfRecord,
  type ConsentOfRecordOptions,
  createConsentOfRecord,
} from './graph/consent-of-record';
export {
  type EncryptedColumnEntry,
  IDENTITY_ENCRYPTED_COLUMNS,
  IDENTITY_IDENTIFIERS_COLUMN,
  IDENTITY_INDEX_KEYS_COLUMN,
  IDENTITY_TRAITS_COLUMN,
  identifierContext,
  indexKeyContext,
  traitsContext,
} from './graph/encrypted-columns';
export {
  createErasedSubjects,
  type ErasableEvent,
  type ErasedSubjects,
  type ErasedSubjectsOptions,
  type ErasureRefreshLogger,
  type ErasureViewStatus,
  ensureBlindIndexKey,
  keepErasedSubjectsFresh,
} from './graph/erased-subjects';
export {
  createIdentityErasure,
  type ErasureActor,
  type IdentityErasure,
  type IdentityErasureDeps,
} from './graph/erasure';
export { createGraphConsumer, type GraphConsumer, type GraphConsumerOptions } from './graph/graph-consumer';
export {
  IDENTIFIER_KINDS,
  type IdentifierKind,
  isIdentifierKind,
  PRIMARY_KINDS,
  type PrimaryKind,
  VENDOR_ID_KINDS,
  type VendorIdKind,
} from './graph/identifiers';
export {
  createIdentityGraph,
  type ErasureCounts,
  type IdentityEnrichment,
  type IdentityGraph,
  type IdentityGraphOptions,
  type IdentityLookup,
  type IngestResult,
  type LookupRequest,
  type ProfileKeys,
  type Subject,
} from './graph/identity-graph';
export { MAX_TRAITS } from './graph/traits';
export {
  createVisitorConsentStore,
  type VisitorConsentOptions,
  type VisitorConsentStore,
} from './graph/visitor-consent';
export { INVALID_TOKEN_BODY } from './http/identity.routes';
export { createIdentityHub, type IdentityHub, type IdentityHubDeps } from './identity-hub';
export { identityHubMigrations, requireIdentityMigrations } from './migrations';
export type {
  IdentityHubLogger,
  LinkedDomainSource,
  PipelineRef,
  PipelineResolver,
} from './ports';
export { controlPlaneHubSources, type HubSources } from './sources/control-plane-sources.adapter';
export {
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_PURPOSE,
  type TokenClaims,
  tokenClaimsSchema,
  tokenContext,
} from './tokens/claims';
export {
  checkDestination,
  type DestinationRefusal,
  type DestinationVerdict,
  MAX_DESTINATION_LENGTH,
  TOKEN_PARAM,
  withToken,
} from './tokens/destination';
export { type LinkedDomain, parseLinkedDomain } from './tokens/hosts';
export {
  cacheSingleUseStore,
  type SingleUseStore,
  type SingleUseStoreOptions,
  sqlSingleUseStore,
} from './tokens/single-use';
export {
  createTokenService,
  type IssuedToken,
  type OpenResult,
  type ResolveResult,
  TOKEN_REJECTIONS,
  type TokenRejection,
  type TokenService,
  type TokenServiceOptions,
} from './tokens/token-service';
