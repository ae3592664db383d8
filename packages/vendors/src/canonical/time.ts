import type { CanonicalEvent } from '@signal/events';

/**
 * When the event happened, in Unix milliseconds, or undefined when `timestamp` cannot be read.
 *
 * `timestamp` is the client's clock. A client cannot have seen the event after the gateway received it, so a
 * timestamp later than `receivedAt` (a fast device clock) is clamped to `receivedAt` rather than sent into the
 * future, where vendors refuse it. A timestamp earlier than `receivedAt` is kept: queued and offline events are
 * legitimately late, and how late is what the age guard checks.
 */
export function eventTimeMs(event: Pick<CanonicalEvent, 'timestamp' | 'receivedAt'>): number | undefined {
  const happened = Date.parse(event.timestamp);
  if (Number.isNaN(happened)) return undefined;
  const received = Date.parse(event.receivedAt);
  return Number.isNaN(received) ? happened : Math.min(happened, received);
}

/** Unix seconds (Meta, TikTok, Pinterest, Snap `event_time`). */
export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Google Ads `conversionDateTime`: `yyyy-mm-dd hh:mm:ss+00:00` (UTC). */
export function googleAdsDateTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00`;
}
