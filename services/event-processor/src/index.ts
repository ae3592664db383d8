export { carriesConsent, eventConsentState } from './consent/event-consent';
export {
  createEventPipeline,
  type DedupCache,
  type EventPipeline,
  type EventPipelineDeps,
  type PipelineResult,
  type PositionedEvent,
} from './event-pipeline';
export {
  createEventProcessor,
  type EventProcessor,
  type EventProcessorDeps,
  type ProcessorSettings,
  processorSettingsSchema,
} from './event-processor';
export { compilePipeline, type Pipeline } from './integrations/pipeline';
export {
  EVENT_DROP_REASONS,
  type EventDropReason,
  INTEGRATION_SKIP_REASONS,
  type IntegrationSkipReason,
  type ProcessorMetrics,
  processorMetrics,
} from './metrics';
export {
  BOT_SIGNALS,
  type BotScorer,
  type BotSignal,
  type BotVerdict,
  compileBotScorer,
} from './org-data-layer/bot-filter';
export {
  type CompileDataLayerOptions,
  type CompiledDataLayer,
  compileDataLayer,
  DataLayerConfigError,
} from './org-data-layer/compile';
export {
  type CompiledIntegration,
  createDataLayerDirectory,
  type DataLayerDirectory,
  type DataLayerDirectoryOptions,
  SourceUnavailableError,
} from './org-data-layer/directory';
export {
  compileRouter,
  type Router,
  type RoutingDecision,
  type RoutingTarget,
} from './org-data-layer/routing';
export { stripPersonalData } from './org-data-layer/strip';
export type {
  IntegrationSource,
  OrgDataLayerSource,
  ProcessorIntegrationInput,
  ProcessorLogger,
} from './ports';
export {
  controlPlaneProcessorSources,
  type ProcessorSources,
} from './sources/control-plane-sources.adapter';
