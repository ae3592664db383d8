export {
  type ControlPlane,
  type ControlPlaneOptions,
  createControlPlane,
  type DeliveryControlPlaneReader,
  type GatewayControlPlaneReader,
  type IdentityControlPlaneReader,
  type ProcessorControlPlaneReader,
} from './control-plane';
export {
  type DataLayerConfig,
  type DataLayerInput,
  type DataLayerRepository,
  dataLayerInputSchema,
} from './data-layer.repository';
export { type DemoOrg, type DemoOrgOptions, ensureDemoOrg } from './demo-org';
export {
  columnIdentifiers,
  countRecordsByKeyId,
  countRecordsPendingReencryption,
  countRecordsUnderKey,
  ENCRYPTED_COLUMNS,
  type EncryptedColumn,
  type EncryptedRowFacts,
  INTEGRATION_CREDENTIALS_COLUMN,
  integrationCredentialsContext,
  PIPELINE_SECRETS_COLUMN,
  pipelineSecretContext,
} from './encrypted-columns';
export { ControlPlaneError, type ControlPlaneErrorCode, isControlPlaneError } from './errors';
export { ID_PATTERN, ID_PREFIXES, type IdKind, newId } from './ids';
export {
  credentialsSchema,
  DESTINATION_SETTINGS,
  destinationChanged,
  type Integration,
  type IntegrationCredentials,
  type IntegrationPatch,
  type IntegrationsRepository,
  integrationPatchSchema,
  type JsonValue,
  MASK,
  maskCredentials,
  type NewIntegrationInput,
  newIntegrationSchema,
} from './integrations.repository';
export { controlPlaneMigrations } from './migrations';
export { type NewOrgInput, newOrgSchema, type Org, type OrgsRepository } from './orgs.repository';
export {
  DEFAULT_PAGE_LIMIT,
  decodeCursor,
  encodeCursor,
  MAX_PAGE_LIMIT,
  type Page,
  type PageRequest,
} from './pagination';
export {
  createScryptHasher,
  DEFAULT_SCRYPT_COST,
  type PasswordHasher,
  type ScryptCost,
  type ScryptHasherOptions,
} from './password-hasher';
export {
  type CreatedPipeline,
  type CredentialStatus,
  DEFAULT_GRACE_SECONDS,
  type GatewayPipeline,
  MAX_GRACE_SECONDS,
  type NewPipelineInput,
  newPipelineSchema,
  type Pipeline,
  type PipelineKeyInfo,
  type PipelinePatch,
  type PipelineSecretInfo,
  type PipelinesRepository,
  pipelinePatchSchema,
  type RotationInput,
  rotationSchema,
} from './pipelines.repository';
export type {
  IssuedRefreshToken,
  RefreshOutcome,
  RefreshTokenLifetimes,
  RefreshTokensRepository,
} from './refresh-tokens.repository';
export { type ControlPlaneCrypto, isSealedText, openColumn, type SealedColumn, sealColumn } from './sealing';
export {
  PIPELINE_KEY_ENVIRONMENTS,
  PIPELINE_KEY_PATTERN,
  type PipelineKeyEnvironment,
} from './secrets';
export {
  type Change,
  type Clock,
  type InviteUserInput,
  inviteUserSchema,
  type NewUserInput,
  newUserSchema,
  ONE_TIME_PASSWORD_TTL_MS,
  type User,
  type UserAuthRecord,
  type UsersRepository,
} from './users.repository';
export {
  emailSchema,
  PIPELINE_TYPES,
  type PipelineType,
  passwordSchema,
  ROLES,
  type Role,
  roleSchema,
} from './validation';
