export {
  type CreateLoggerOptions,
  createLogger,
  type Logger,
  type LogLevelName,
  REDACTED,
  scrub,
  scrubString,
} from './logger';
export { type CreateMetricsOptions, createMetrics, type Metrics } from './metrics';
