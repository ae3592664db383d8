import {
  type DlqMessage,
  findJsonProblem,
  type JsonValue,
  ORIGINAL_JSON_LIMITS,
  type TopicDef,
} from '@signal/events';
import type { z } from 'zod';
import { BusError } from './errors';
import type { Bus, ConsumedMessage, PublishReceipt, SubscribeOptions, Subscription } from './port';

/** Paths and messages of the first few issues; zod's messages never quote the offending value. */
function summarise(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Publishes values to a catalog topic: each is validated against the topic's schema (a producer bug throws
 * `bus_invalid_message` here instead of poisoning the topic), keyed by the topic's key function and
 * serialised as JSON. Resolves when the bus has durably accepted all of them.
 */
export async function publishTo<T>(
  bus: Bus,
  topic: TopicDef<T>,
  values: readonly T[],
  headers?: Readonly<Record<string, string>>,
): Promise<PublishReceipt[]> {
  const messages = values.map((value, i) => {
    const result = topic.schema.safeParse(value);
    if (!result.success) {
      throw new BusError(
        'bus_invalid_message',
        `message ${i} for ${topic.name} does not match its schema: ${summarise(result.error)}`,
      );
    }
    const key = topic.key(result.data);
    const value_ = JSON.stringify(result.data);
    return headers === undefined ? { key, value: value_ } : { key, value: value_, headers };
  });
  return await bus.publish(topic.name, messages);
}

/** A consumed message after decoding against its topic's schema: a value, or why it is not one. */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T; readonly message: ConsumedMessage }
  | {
      readonly ok: false;
      /** Why the message could not be decoded (paths and zod messages, no values). */
      readonly reason: string;
      readonly message: ConsumedMessage;
    };

export interface TypedBatch<T> {
  readonly topic: TopicDef<T>;
  readonly partition: number;
  /** In offset order. Undecodable messages are included as values so the handler can dead-letter them. */
  readonly items: readonly Decoded<T>[];
  heartbeat(): Promise<void>;
  readonly signal: AbortSignal;
}

export interface TypedSubscribeOptions<T> extends Omit<SubscribeOptions, 'topics' | 'handler'> {
  readonly topics: readonly TopicDef<T>[];
  readonly handler: (batch: TypedBatch<T>) => Promise<void>;
}

export function decodeMessage<T>(topic: TopicDef<T>, message: ConsumedMessage): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(message.value);
  } catch {
    return { ok: false, reason: 'value is not JSON', message };
  }
  const result = topic.schema.safeParse(json);
  return result.success
    ? { ok: true, value: result.data, message }
    : { ok: false, reason: summarise(result.error), message };
}

/** Subscribes to catalog topics; the handler receives decoded values (see `Decoded`). */
export async function subscribeTo<T>(bus: Bus, options: TypedSubscribeOptions<T>): Promise<Subscription> {
  const byName = new Map(options.topics.map((t) => [t.name, t]));
  const { topics, handler, ...rest } = options;
  return await bus.subscribe({
    ...rest,
    topics: topics.map((t) => t.name),
    handler: async (batch) => {
      const topic = byName.get(batch.topic);
      if (topic === undefined)
        throw new BusError('bus_unknown_topic', `received a batch of unsubscribed ${batch.topic}`);
      await handler({
        topic,
        partition: batch.partition,
        items: batch.messages.map((m) => decodeMessage(topic, m)),
        heartbeat: () => batch.heartbeat(),
        signal: batch.signal,
      });
    },
  });
}

/** The original of a dead letter: the parsed JSON when it parses and fits the bounds, else the raw text. */
function originalOf(value: string): JsonValue {
  try {
    const parsed = JSON.parse(value) as unknown;
    if (findJsonProblem(parsed, ORIGINAL_JSON_LIMITS) === null) return parsed as JsonValue;
  } catch {
    // Not JSON: kept as text below.
  }
  return value.length <= ORIGINAL_JSON_LIMITS.maxStringLength
    ? value
    : value.slice(0, ORIGINAL_JSON_LIMITS.maxStringLength);
}

export interface DeadLetterDetails {
  /** Stable error code, e.g. `invalid_message`, `retries_exhausted`. */
  readonly error: string;
  /** Explanation without secrets or raw PII. */
  readonly details: string;
  readonly integrationId?: string;
  readonly attempts?: number;
  readonly lastResponse?: DlqMessage['lastResponse'];
  readonly failedAt: Date;
}

/** Builds the `dlq-events` value for a consumed message, keeping its key and topic for replay. */
export function deadLetter(message: ConsumedMessage, why: DeadLetterDetails): DlqMessage {
  const truncated = message.value.length > ORIGINAL_JSON_LIMITS.maxStringLength;
  const letter: DlqMessage = {
    error: why.error,
    details: (truncated ? `${why.details} (original truncated)` : why.details).slice(0, 4096),
    original: originalOf(message.value),
    originalKey: message.key.slice(0, 1024),
    topic: message.topic,
    failedAt: why.failedAt.toISOString(),
  };
  if (why.integrationId !== undefined) letter.integrationId = why.integrationId;
  if (why.attempts !== undefined) letter.attempts = why.attempts;
  if (why.lastResponse !== undefined) letter.lastResponse = why.lastResponse;
  return letter;
}
