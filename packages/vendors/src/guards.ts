import { isIP } from 'node:net';
import type { CanonicalEvent } from '@signal/events';
import type { NormalizeHints, VendorNormalizer } from '@signal/pii';
import type { Preparation, VendorLimits } from './adapter';
import { eventTimeMs } from './canonical/time';
import type { GuardReason } from './outcome';

/** A guard refusal as `prepare` returns it. */
export function refuse(reason: GuardReason, detail: string): Preparation {
  return { ok: false, kind: 'dead_letter', reason, detail };
}

const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const BRACKETED_WITH_PORT = /^\[([0-9A-Fa-f:.]+)\]:\d{1,5}$/;

/**
 * The client address to send, or the guard reason it fails. An address with a port (`203.0.113.7:5123`,
 * `[2001:db8::1]:443`, as some proxies forward it) is refused rather than silently trimmed: it means the
 * ingest path is mis-configured, and the DLQ makes that visible.
 */
export function checkIp(
  ip: string | undefined,
):
  | { readonly ok: true; readonly ip: string | undefined }
  | { readonly ok: false; readonly reason: 'ip_with_port' | 'invalid_ip' } {
  if (ip === undefined) return { ok: true, ip: undefined };
  const value = ip.trim();
  if (isIP(value) !== 0) return { ok: true, ip: value };
  const v4 = IPV4_WITH_PORT.exec(value)?.[1];
  const v6 = BRACKETED_WITH_PORT.exec(value)?.[1];
  if ((v4 !== undefined && isIP(v4) === 4) || (v6 !== undefined && isIP(v6) === 6)) {
    return { ok: false, reason: 'ip_with_port' };
  }
  return { ok: false, reason: 'invalid_ip' };
}

/** The age window every vendor has: too old, too far in the future, or unreadable. */
export function checkEventTime(
  event: Pick<CanonicalEvent, 'timestamp' | 'receivedAt'>,
  limits: Pick<VendorLimits, 'maxEventAgeMs' | 'maxFutureSkewMs'>,
  now: number,
):
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly reason: GuardReason; readonly detail: string } {
  const ms = eventTimeMs(event);
  if (ms === undefined)
    return { ok: false, reason: 'invalid_timestamp', detail: 'timestamp is not an instant' };
  if (now - ms > limits.maxEventAgeMs) {
    return {
      ok: false,
      reason: 'event_too_old',
      detail: `event is ${Math.round((now - ms) / 3_600_000)} h old; this vendor accepts ${Math.round(limits.maxEventAgeMs / 3_600_000)} h`,
    };
  }
  if (ms - now > limits.maxFutureSkewMs) {
    return {
      ok: false,
      reason: 'event_in_future',
      detail: `event is dated ${Math.round((ms - now) / 1000)} s ahead of the delivery clock`,
    };
  }
  return { ok: true, ms };
}

/**
 * The value to send for a PII field under the vendor's profile: the SHA-256 hex for a hashed field, the
 * normalised text for a clear one, undefined when absent or rejected (a rejected value is never sent).
 */
export function piiValue(
  normalizer: VendorNormalizer,
  field: string,
  value: string | undefined,
  hints?: NormalizeHints,
): string | undefined {
  if (value === undefined) return undefined;
  const result = normalizer.normalize(field, value, hints);
  if (!result.ok) return undefined;
  return result.hash ?? result.normalized;
}

/** `[value]` or undefined: the array form Meta, Pinterest and Snap take for hashed identifiers. */
export function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : [value];
}
