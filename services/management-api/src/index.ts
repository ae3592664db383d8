export type { Principal } from './auth/authenticate';
export { LoginThrottle, type LoginThrottleOptions } from './auth/login-throttle';
export {
  type AccessTokens,
  createAccessTokens,
  TOKEN_ALGORITHM,
  TOKEN_AUDIENCE,
  TOKEN_ISSUER,
} from './auth/tokens';
export {
  ManagementApiConfigError,
  type ManagementApiSettings,
  MIN_JWT_SECRET_BYTES,
  managementApiSettings,
} from './config';
export { buildContainer, type Container, MANAGEMENT_API_SCHEMA } from './container';
export { managementApiMigrations } from './crypto/reencrypt.migrations';
export {
  createReencryptionJobs,
  type ReencryptionActor,
  type ReencryptionFailure,
  type ReencryptionJobs,
  type ReencryptionJobsOptions,
  type ReencryptionStatus,
  readReencryptionFailures,
  readReencryptionStatus,
  type StartOutcome,
} from './crypto/reencrypt-job';
export type { DlqDeps } from './dlq/dlq.routes';
export type { ApiLogger } from './logger';
export {
  ADMIN_RATE_LIMIT,
  createManagementApi,
  type ManagementApi,
  type ManagementApiOptions,
} from './management-api';
export {
  createDeploymentAuthority,
  DEFAULT_OPERATOR_ORG_SLUG,
  type DeploymentAuthority,
  OPERATOR_MIN_ROLE,
} from './rbac/deployment-authority';
export { PERMISSIONS, type Permission, ROLE_RANK, roleAllows } from './rbac/permissions';
export { ADMIN_PREFIX, ROUTES, type RouteId, type RouteSpec } from './rbac/route-table';
