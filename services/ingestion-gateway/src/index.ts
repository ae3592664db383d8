export { type HmacFailure, type HmacVerdict, signBody, verifyHmac } from './auth/hmac';
export { createGateway, type GatewayConfig, type GatewayDeps, type GatewayLogger } from './gateway';
export {
  type CachedDirectoryOptions,
  cachedPipelineDirectory,
  PIPELINE_KEY_PATTERN,
  type PipelineAuth,
  type PipelineDirectory,
} from './pipelines/pipeline-directory';
