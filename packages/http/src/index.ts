export {
  ANONYMOUS_ID_COOKIE,
  ANONYMOUS_ID_MAX_AGE_SECONDS,
  ANONYMOUS_ID_PATTERN,
  anonymousIdSetCookie,
  isValidAnonymousId,
  newAnonymousId,
  readAnonymousIdCookie,
} from './anonymous-id-cookie';
export { BodyBudget, type BudgetHold } from './body-budget';
export {
  CERTIFICATE_REJECT_REASONS,
  CertificateError,
  type CertificateEvent,
  type CertificateFiles,
  type CertificateInfo,
  type CertificateManager,
  type CertificateManagerOptions,
  type CertificateMaterial,
  type CertificateRejectReason,
  type CertificateStatus,
  type CheckOutcome,
  certificateInfo,
  createCertificateManager,
  parseCertificateMaterial,
  type SecureContextMaterial,
} from './certificate-manager';
export { type CertificateMetricsRegistry, registerCertificateMetrics } from './certificate-metrics';
export {
  clientBucket,
  clientIp,
  type TrustedProxies,
  TrustedProxiesError,
  trustedProxies,
} from './client-ip';
export {
  AddressListError,
  DESTINATION_NOT_ALLOWED,
  type DestinationGuard,
  DestinationNotAllowedError,
  destinationGuard,
} from './destination-guard';
export {
  HTTP_ERROR_CODES,
  HttpError,
  type HttpErrorCode,
  type HttpErrorOptions,
  httpStatusFor,
  isHttpError,
  isRetryableHttpError,
} from './errors';
export {
  type ComponentHealth,
  type ComponentStatus,
  evaluateReadiness,
  type HealthCheck,
  type HealthDetail,
  type HealthRoutesOptions,
  type ReadinessReport,
  registerHealthRoutes,
} from './health';
export {
  DEFAULT_MAX_JSON_DEPTH,
  parseJsonBytes,
  type ReadJsonBodyOptions,
  type ReadJsonBodyWithSchemaOptions,
  readJsonBody,
  readJsonBodyBytes,
} from './json-body';
export { type Logger, silentLogger } from './logger';
export { type MetricsSource, metricsHandler } from './metrics-route';
export {
  classifyNetworkError,
  NETWORK_ERROR_KINDS,
  type NetworkError,
  type NetworkErrorKind,
} from './network-error';
export { sendError, sendHttpError, sendJson } from './respond';
export { err, ok, type Result } from './result';
export {
  createRouter,
  HTTP_METHODS,
  type HttpMethod,
  type RequestHandler,
  type RouteContext,
  type RouteHandler,
  type Router,
  type RouterOptions,
} from './router';
export {
  type CreateServerOptions,
  createServer,
  type ServerLimits,
  type ServerTlsOptions,
  type SignalHttpServer,
} from './server';
export {
  type ClientCertificateOptions,
  createTestPki,
  type ServerCertificateOptions,
  type TestCa,
  type TestCertificate,
  type TestKeyType,
  type TestPki,
  type ValidityOptions,
} from './testing/test-pki';
export {
  DEFAULT_TLS_MIN_VERSION,
  SERVER_CIPHERS,
  TLS12_CIPHER_SUITES,
  TLS13_CIPHER_SUITES,
  type TlsMinVersion,
  TlsMinVersionSchema,
} from './tls-policy';
export {
  type ClientCertificate,
  createVendorDispatcher,
  createVendorDispatcherRegistry,
  DEFAULT_VENDOR_DISPATCHER_OPTIONS,
  type VendorDispatcherOptions,
  type VendorDispatcherRegistry,
  VendorTlsConfigError,
} from './vendor-dispatcher';
export {
  request,
  retryAfterMs,
  type VendorNetworkFailure,
  type VendorRequest,
  type VendorRequestMethod,
  type VendorRequestResult,
  type VendorResponse,
} from './vendor-request';
