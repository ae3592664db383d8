export {
  type Condition,
  compileCondition,
  conditionSchema,
  globMatch,
  MAX_CONDITION_DEPTH,
  MAX_CONDITION_NODES,
  type Predicate,
  type Scalar,
} from './condition';
export {
  type BotFilteringConfig,
  type BotFilteringInput,
  botFilteringSchema,
  type OrgDataLayerConfig,
  type OrgDataLayerConfigInput,
  type OrgDataLayerRules,
  type OrgDataLayerRulesInput,
  orgDataLayerConfigSchema,
  orgDataLayerRulesSchema,
  type RoutingRule,
  type RoutingRuleInput,
  routingRuleSchema,
  routingRulesSchema,
} from './config.schema';
export { type FieldPath, fieldPathSchema, MAX_PATH_SEGMENTS, readPath, splitPath } from './field-path';
export {
  MAX_PIPELINE_STEPS,
  type PipelineJsonValue,
  type PipelineStep,
  type PipelineStepInput,
  pipelineStepSchema,
  pipelineStepsSchema,
} from './pipeline.schema';
