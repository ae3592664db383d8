import type { CanonicalEvent } from '@signal/events';
import type { VendorRequestResult } from '@signal/http';
import type { VendorId, VendorNormalizer } from '@signal/pii';
import type { z } from 'zod';
import type { DropReason, GuardReason, Verdict } from './outcome';

export const VENDOR_ADAPTER_IDS = [
  'meta',
  'ga4',
  'google_ads',
  'tiktok',
  'pinterest',
  'snapchat',
  'linkedin',
  'webhook',
] as const;
export type VendorAdapterId = (typeof VENDOR_ADAPTER_IDS)[number];

/** A vendor's documented limits, as this integration's settings make them. */
export interface VendorLimits {
  /** Events per request. */
  readonly maxBatchSize: number;
  /** Bytes of one request body; batches are also cut by size, not only by count. */
  readonly maxBodyBytes: number;
  /** Bytes of one mapped event; a bigger one is refused as `payload_too_large`. */
  readonly maxEventBytes: number;
  /** How old an event may be when it is sent (`event_too_old`). */
  readonly maxEventAgeMs: number;
  /** How far ahead of the delivery clock an event may be dated (`event_in_future`). */
  readonly maxFutureSkewMs: number;
}

/** What an adapter may use while mapping and classifying: parsed config, the vendor's PII profile, the clock. */
export interface AdapterContext<S, C> {
  readonly settings: S;
  readonly credentials: C;
  /** The vendor's normalisation + SHA-256 profile, compiled once per integration. */
  readonly normalizer: VendorNormalizer;
  /** Unix milliseconds, one instant for the whole delivery. */
  readonly now: number;
}

/** One event as the vendor's wire format has it (a `data[]` row, a conversion, an element). */
export type Payload = Record<string, unknown>;

/** The result of mapping one event: its row, or why it is left out of the request. */
export type Preparation =
  | {
      readonly ok: true;
      readonly payload: Payload;
      /** Rows may share a request only when their keys are equal (GA4: one client per request). */
      readonly batchKey?: string;
    }
  | {
      readonly ok: false;
      readonly kind: 'dead_letter';
      readonly reason: GuardReason;
      readonly detail: string;
    }
  | { readonly ok: false; readonly kind: 'dropped'; readonly reason: DropReason; readonly detail: string };

/** An event that passed every guard, with its mapped row. */
export interface PreparedEvent {
  readonly event: CanonicalEvent;
  readonly payload: Payload;
  /** UTF-8 length of the row's JSON. */
  readonly bytes: number;
  readonly batchKey: string;
}

/** One HTTP request to a vendor. */
export interface BuiltRequest {
  readonly url: string;
  /** `url` with any credential in the query string replaced by `[redacted]`: the only form that is logged. */
  readonly logUrl: string;
  readonly method: 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * A vendor's delivery adapter: pure functions from canonical events to one HTTP request, and from the
 * vendor's answer to one verdict per event. No I/O happens here; `deliver` sends through an injected
 * transport (undici Dispatcher), so adapters are tested against real local servers without mocks.
 */
export interface VendorAdapter<S, C> {
  readonly id: VendorAdapterId;
  readonly displayName: string;
  /** Non-secret configuration (pixel id, API version, test code, endpoint override for tests, …). */
  readonly settingsSchema: z.ZodType<S>;
  /** Secrets, decrypted in memory by the caller (access token, API secret, signing secret, …). */
  readonly credentialsSchema: z.ZodType<C>;
  /** Which `@signal/pii` profile normalises and hashes identifiers for this integration. */
  piiProfile(settings: S): VendorId;
  limits(settings: S): VendorLimits;
  /**
   * Maps one event to its row and runs the vendor-specific contract guards on it (IP with a port, missing
   * identifiers). Never throws for bad data: a refusal is a value naming the reason. Age and size guards,
   * common to every vendor, run in `deliver` from `limits`.
   */
  prepare(event: CanonicalEvent, ctx: AdapterContext<S, C>): Preparation;
  /** One request for a batch that respects `limits` (count, size, equal `batchKey`). */
  buildRequest(batch: readonly PreparedEvent[], ctx: AdapterContext<S, C>): BuiltRequest;
  /**
   * One verdict per event of the batch, in order: per row where the vendor reports rows, else shared. A vendor
   * that refuses the whole request because of some rows leaves the others unjudged: `resend` for them when it
   * names the rows at fault (which get their dead letter), `bisect(verdict)` for every row when it names none;
   * `deliver` then sends follow-up requests without them (`settleBatch`).
   */
  classify(
    result: VendorRequestResult,
    batch: readonly PreparedEvent[],
    ctx: AdapterContext<S, C>,
  ): readonly Verdict[];
}
