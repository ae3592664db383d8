export { BusError, type BusErrorCode, isBusError } from './errors';
export {
  type KafkaBusConfig,
  type KafkaBusConfigInput,
  kafkaBusConfigSchema,
  parseKafkaBusConfig,
} from './kafka/config';
export { createKafkaBus, ensureKafkaTopics, type KafkaBus, type KafkaBusDeps } from './kafka/kafka-bus';
export { reconcileTopics, type TopicOutcome } from './kafka/topics';
export {
  DEAD_LETTER_RESERVE_BYTES,
  fitsBus,
  kafkaMaxMessageBytes,
  messageBytes,
  oversize,
  POSTGRES_MAX_MESSAGE_BYTES,
} from './message-size';
export { murmur2, partitionFor } from './partitioner';
export type {
  Batch,
  Bus,
  BusLogger,
  ConsumedMessage,
  OutgoingMessage,
  PartitionRef,
  PublishOptions,
  PublishReceipt,
  StopOptions,
  SubscribeOptions,
  Subscription,
  TopicSpec,
} from './port';
export { busMigrations } from './postgres/migrations';
export {
  type CompactResult,
  createPostgresBus,
  type PostgresBus,
  type PostgresBusOptions,
  type PostgresBusSettings,
} from './postgres/postgres-bus';
export {
  type BusCrypto,
  type MessageLocation,
  messageContext,
  type SegmentLocation,
  segmentContext,
  type UnreadableListener,
} from './sealing';
export {
  type DeadLetterDetails,
  type Decoded,
  deadLetter,
  decodeMessage,
  publishTo,
  subscribeTo,
  type TypedBatch,
  type TypedSubscribeOptions,
} from './typed';
