export { type HmacFailure, type HmacVerdict, signBody, verifyHmac } from './auth/hmac';
export { createGateway, type GatewayConfig, type GatewayDeps, type GatewayLogger } from './gateway';
export {
  ANONYMOUS_ID_COOKIE,
  anonymousIdSetCookie,
  isValidAnonymousId,
  newAnonymousId,
  readAnonymousIdCookie,
} from './http/cookie';
export {
  type CachedDirectoryOptions,
  cachedPipelineDirectory,
  PIPELINE_KEY_PATTERN,
  type PipelineAuth,
  type PipelineDirectory,
} from './pipelines/pipeline-directory';
