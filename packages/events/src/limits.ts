/**
 * Size bounds for everything an event may carry. The gateway caps a request body at MAX_PAYLOAD_SIZE bytes;
 * these bounds cap the *shape* as well, so a hostile or broken client cannot make a consumer walk a million
 * keys, a 10,000-level nesting or a 400 KB user agent, and vendors never receive what they would reject.
 * They are generous for real traffic (a 1,000-item cart fits) and deliberately not configurable per
 * pipeline: every consumer of the bus relies on the same bounds.
 */
export const EVENT_LIMITS = {
  /** `event` (track name, page name). */
  eventName: 256,
  /** `userId`, `anonymousId`, `groupId`. */
  identifier: 256,
  /** `messageId`: UUIDs from Datafly.js, any printable id from server sources. */
  messageId: 128,
  /** `context.page.url`, `.referrer`, `.search`. */
  url: 8192,
  pagePath: 4096,
  pageTitle: 1024,
  userAgent: 1024,
  /** Raw IAB strings: a TCF v2.2 string with publisher restrictions and disclosed vendors runs to a few KB. */
  tcfString: 16_384,
  gppString: 16_384,
  gppSections: 32,
  clickIds: 16,
  clickIdValue: 1024,
  libraryName: 128,
  libraryVersion: 64,
  locale: 64,
  timezone: 64,
} as const;

/** Bounds of a free-form JSON tree (`properties`, `traits`, a dead-lettered original). */
export interface JsonLimits {
  /** Nesting below the root object; the root's own keys are depth 1. */
  readonly maxDepth: number;
  readonly maxKeysPerObject: number;
  readonly maxKeyLength: number;
  readonly maxArrayLength: number;
  readonly maxStringLength: number;
  /** Every object, array and scalar in the tree counts one. */
  readonly maxNodes: number;
}

/** For `properties` and `traits`. */
export const PAYLOAD_JSON_LIMITS: JsonLimits = Object.freeze({
  maxDepth: 8,
  maxKeysPerObject: 256,
  maxKeyLength: 256,
  maxArrayLength: 1000,
  maxStringLength: 8192,
  maxNodes: 10_000,
});

/**
 * For the `original` of a dead-lettered message: a whole event (two payload trees plus context) or whatever
 * undecodable value arrived on a topic.
 */
export const ORIGINAL_JSON_LIMITS: JsonLimits = Object.freeze({
  maxDepth: 12,
  maxKeysPerObject: 256,
  maxKeyLength: 256,
  maxArrayLength: 1000,
  /** Room for an original kept as raw text: the gateway caps a body at 512 KiB. */
  maxStringLength: 1 << 20,
  maxNodes: 50_000,
});
