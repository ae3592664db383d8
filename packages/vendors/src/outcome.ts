/**
 * What happened to one event of a delivery attempt, as a value (STYLE §6). The `kind` values are the
 * `outcome` label of `signal_deliveries_total{vendor,outcome}`; every `reason` is a closed, stable code that is
 * safe as a log field or DLQ `error` (never a value from the event or a credential).
 */

/** Pre-delivery contract guards: the event is left out of the request, the rest of the batch is sent. */
export const GUARD_REASONS = [
  /** Older than the vendor accepts (Meta 7 days, GA4 72 h, Snap 37 days, LinkedIn 90 days, …). */
  'event_too_old',
  /** Dated further ahead of the delivery clock than the vendor's skew allowance. */
  'event_in_future',
  /** `context.ip` carries a port (`1.2.3.4:5678`, `[::1]:443`): vendors reject or mis-match such an address. */
  'ip_with_port',
  /** `context.ip` is not an IPv4/IPv6 address. */
  'invalid_ip',
  /** `timestamp` cannot be read as an instant. */
  'invalid_timestamp',
  /** None of the identifiers the vendor needs to match a person (see each adapter). */
  'missing_identifiers',
  /** A field the vendor requires for this kind of event is absent (Meta website events: page URL, user agent). */
  'missing_required_field',
  /** The mapped event alone exceeds the vendor's size limit. */
  'payload_too_large',
] as const;
export type GuardReason = (typeof GUARD_REASONS)[number];

/** Deliberately not sent: nothing is wrong, the vendor just has no use for it. */
export const DROP_REASONS = [
  /** `identify` / `group` calls: conversion APIs take events, not profile updates. */
  'unsupported_event_type',
  /** No vendor event (or conversion action/rule) is mapped for this event name. */
  'unmapped_event',
  /** The event's consent rules out what this call is for (a Google enhancement with ad_user_data denied). */
  'consent_denied',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const RETRY_REASONS = [
  /** HTTP 429, or a vendor throttle code (Meta 4/17/32/613/80000-80014, TikTok 40100, Google RESOURCE_EXHAUSTED). */
  'rate_limited',
  /** 5xx, 408, 425, or a vendor code for a transient failure (Meta 1/2/341/368, TikTok 5xxxx). */
  'vendor_unavailable',
  /** A row-level failure the vendor documents as temporary (Google Ads TOO_RECENT_CONVERSION_ACTION). */
  'vendor_transient',
  /** Connect, header or body timeout. */
  'timeout',
  /** Connection refused or reset, DNS failure, protocol error, aborted by shutdown. */
  'network_error',
  /**
   * The vendor refused the whole batch because of other rows, and the follow-up requests that isolate them ran
   * out before this row was judged (see `settleBatch`): it goes to the next attempt.
   */
  'batch_partially_rejected',
] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];

export const DEAD_LETTER_REASONS = [
  ...GUARD_REASONS,
  /** Bad, expired or revoked credentials, or missing permissions (Meta 190/10/200, HTTP 401/403): alert. */
  'auth_failed',
  /** The vendor validated the payload and refused it (Meta 100, TikTok 40002, Google INVALID_ARGUMENT, …). */
  'validation_failed',
  /** Any other permanent refusal (other 4xx). */
  'vendor_rejected',
  /** LinkedIn 426: the pinned `LinkedIn-Version` has been sunset; configuration must change. */
  'api_version_deprecated',
  /** A 3xx answer: vendor APIs do not redirect a POST, and redirects are never followed. */
  'unexpected_redirect',
  /** The vendor's certificate or TLS parameters were refused (strict TLS); needs a human, replayable. */
  'tls_error',
  /** The request could not be made at all (invalid or non-https endpoint). */
  'invalid_request',
  /** The vendor's answer exceeded the dispatcher's response size limit. */
  'response_too_large',
  /** Mapping the event threw: a bug, isolated to this event. */
  'mapping_failed',
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/**
 * The vendor's last answer, for the DLQ (`dlqMessageSchema.lastResponse`): HTTP status and the start of the
 * body with credentials, bearer tokens, e-mail and IP addresses removed, or the network error code.
 */
export interface CapturedResponse {
  readonly status?: number;
  readonly body?: string;
  readonly errorCode?: string;
}

export interface DeliveredVerdict {
  readonly kind: 'delivered';
}

export interface RetryVerdict {
  readonly kind: 'retry';
  readonly reason: RetryReason;
  readonly retryAfterMs?: number;
  readonly detail?: string;
}

export interface DeadLetterVerdict {
  readonly kind: 'dead_letter';
  readonly reason: DeadLetterReason;
  readonly detail?: string;
}

/** A settled classification without the event it applies to: what becomes a `DeliveryOutcome`. */
export type FinalVerdict = DeliveredVerdict | RetryVerdict | DeadLetterVerdict;

/**
 * What an adapter's `classify` says about one row of a request. Besides a final verdict, a vendor that refused
 * the whole request because of some of its rows (Meta, TikTok, LinkedIn, Pinterest, Snap) leaves the other rows unjudged, and
 * `deliver` goes on with them in follow-up requests (`settleBatch`); these two never become outcomes:
 *
 * - `resend`: the vendor named other rows as the cause; this one goes again without them.
 * - `bisect`: the vendor named no row; the request is halved until the row at fault is alone, and `verdict` is
 *   what a row refused alone (or shown to be the one at fault) gets.
 */
export type Verdict =
  | FinalVerdict
  | { readonly kind: 'resend' }
  | { readonly kind: 'bisect'; readonly verdict: DeadLetterVerdict };

export type DeliveryOutcome =
  | { readonly kind: 'delivered'; readonly messageId: string }
  | {
      readonly kind: 'retry';
      readonly messageId: string;
      readonly reason: RetryReason;
      /** From `Retry-After` (seconds or HTTP date) or a vendor retry hint; absent: use the worker's backoff. */
      readonly retryAfterMs?: number;
      readonly detail?: string;
      readonly lastResponse?: CapturedResponse;
    }
  | {
      readonly kind: 'dead_letter';
      readonly messageId: string;
      readonly reason: DeadLetterReason;
      readonly detail?: string;
      readonly lastResponse?: CapturedResponse;
    }
  | {
      readonly kind: 'dropped';
      readonly messageId: string;
      readonly reason: DropReason;
      readonly detail?: string;
    };

export type OutcomeKind = DeliveryOutcome['kind'];

export const delivered: DeliveredVerdict = Object.freeze({ kind: 'delivered' });

export function retry(reason: RetryReason, retryAfterMs?: number, detail?: string): RetryVerdict {
  return {
    kind: 'retry',
    reason,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(detail === undefined ? {} : { detail }),
  };
}

export function deadLetter(reason: DeadLetterReason, detail?: string): DeadLetterVerdict {
  return { kind: 'dead_letter', reason, ...(detail === undefined ? {} : { detail }) };
}

/** Not judged: the vendor blamed other rows of the request. */
export const resend: Verdict = Object.freeze({ kind: 'resend' });

/** The vendor refused the request for a row it did not name; `verdict` is for the row at fault. */
export function bisect(verdict: DeadLetterVerdict): Verdict {
  return { kind: 'bisect', verdict };
}

/** True for the outcome that should raise the credentials alert (bad or revoked token, missing permission). */
export function isAuthFailure(outcome: DeliveryOutcome | Verdict): boolean {
  return outcome.kind === 'dead_letter' && outcome.reason === 'auth_failed';
}
